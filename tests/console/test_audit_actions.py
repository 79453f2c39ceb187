"""The audit trail records one closed list of actions, with where it happened as its own field."""

import importlib

import pytest
from django.apps import apps as global_apps

from console.kernel.audit import AuditAction, AuditSource, audit_record
from console.models import AuditEvent
from tests.catalog.factories import BundleFactory

pytestmark = pytest.mark.django_db


def test_a_free_string_action_is_refused_and_nothing_is_written():
    bundle = BundleFactory()
    with pytest.raises(ValueError):
        audit_record(actor=None, action="stk.paid.callback", obj=bundle)
    assert not AuditEvent.objects.exists()


def test_an_action_and_its_source_are_stored_apart():
    bundle = BundleFactory()
    event = audit_record(actor=None, action=AuditAction.STK_PAID, source=AuditSource.QUERY, obj=bundle)
    event.refresh_from_db()
    assert (event.action, event.source) == ("stk.paid", "query")
    assert event.get_action_display() == "Prompt paid"


def test_the_data_migration_splits_old_actions_that_carried_their_source():
    migration = importlib.import_module("console.migrations.0002_audit_source")
    bundle = BundleFactory()
    rows = {
        "stk.paid.callback": ("stk.paid", "callback"),
        "stk.failed.query": ("stk.failed", "query"),
        "stk.extra_payment.demo": ("stk.extra_payment", "demo"),
        "order.create": ("order.create", ""),
    }
    for action in rows:
        AuditEvent.objects.create(
            action=action, object_type="catalog.bundle", object_id=str(bundle.pk), actor_label="system"
        )
    migration.split_sources(global_apps, None)
    assert {(e.action, e.source) for e in AuditEvent.objects.all()} == set(rows.values())
    migration.join_sources(global_apps, None)
    assert set(AuditEvent.objects.values_list("action", flat=True)) == set(rows)


def test_an_admin_history_url_shows_the_records_audit_trail(admin_client):
    bundle = BundleFactory()
    audit_record(actor=None, action=AuditAction.BUNDLE_CHANGED, obj=bundle)
    audit_record(actor=None, action=AuditAction.BUNDLE_CREATED, obj=BundleFactory())
    response = admin_client.get(f"/admin/catalog/bundle/{bundle.pk}/history/")
    assert response.status_code == 302
    listing = admin_client.get(response.url)
    assert listing.status_code == 200
    rows = list(listing.context["cl"].result_list)
    assert [(e.action, e.object_id) for e in rows] == [("bundle.changed", str(bundle.pk))]
    page = admin_client.get(f"/admin/catalog/bundle/{bundle.pk}/change/")
    assert f"/admin/catalog/bundle/{bundle.pk}/history/" not in page.content.decode()
