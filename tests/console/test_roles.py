import pytest
from django.contrib.auth.models import Group

from console.roles import ROLE_PERMISSIONS, roles_setup


@pytest.mark.django_db
def test_setup_roles_is_idempotent():
    first = roles_setup()
    second = roles_setup()
    assert first == second
    assert Group.objects.filter(name__in=ROLE_PERMISSIONS).count() == 3


@pytest.mark.django_db
def test_agent_cannot_change_catalogue_or_delete_anything(agent):
    assert agent.has_perm("catalog.view_bundle")
    assert not agent.has_perm("catalog.change_bundle")
    assert not any(
        p.startswith(("catalog.delete", "ledger.delete", "reconciliation.delete"))
        for p in agent.get_all_permissions()
    )


@pytest.mark.django_db
def test_manager_cannot_touch_payments(manager):
    assert manager.has_perm("catalog.change_bundle")
    assert not any(p.startswith(("ledger.", "reconciliation.")) for p in manager.get_all_permissions())
