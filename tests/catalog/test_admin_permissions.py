"""Who may do what in the catalogue admin: role x URL, each cell allowed or refused."""

import pytest

from catalog.models import Bundle
from tests.catalog.factories import BundleFactory

pytestmark = pytest.mark.django_db

OK, FORBIDDEN, LOGIN, TO_AUDIT_TRAIL = 200, 403, "login", 302

# url template -> expected for (anonymous, agent, finance, manager, superuser)
GET_MATRIX = {
    "/admin/catalog/bundle/": (LOGIN, OK, OK, OK, OK),
    "/admin/catalog/bundle/add/": (LOGIN, FORBIDDEN, FORBIDDEN, OK, OK),
    "/admin/catalog/bundle/{pk}/change/": (LOGIN, OK, OK, OK, OK),
    "/admin/catalog/bundle/{pk}/delete/": (LOGIN, FORBIDDEN, FORBIDDEN, OK, OK),
    # The history is the bundle's audit trail, for those who may read the trail (finance, superuser).
    "/admin/catalog/bundle/{pk}/history/": (LOGIN, FORBIDDEN, TO_AUDIT_TRAIL, FORBIDDEN, TO_AUDIT_TRAIL),
    "/admin/catalog/bundle/import/": (LOGIN, FORBIDDEN, FORBIDDEN, OK, OK),
    "/admin/catalog/bundle/export/": (LOGIN, OK, OK, OK, OK),
    "/admin/catalog/bundle/{pk}/retire/": (LOGIN, FORBIDDEN, FORBIDDEN, OK, OK),
    "/admin/catalog/bundlepricechange/": (LOGIN, FORBIDDEN, OK, OK, OK),
}
ROLES = ("anonymous", "agent", "finance", "manager", "superuser")
BULK_ACTIONS = ("activate_selected", "deactivate_selected", "feature_selected", "unfeature_selected")


@pytest.fixture
def as_role(request, client):
    def _as(role):
        if role != "anonymous":
            client.force_login(request.getfixturevalue(role))
        return client

    return _as


@pytest.mark.parametrize("role_index, role", list(enumerate(ROLES)))
@pytest.mark.parametrize("url", list(GET_MATRIX))
def test_get_matrix(as_role, role_index, role, url):
    bundle = BundleFactory()
    client = as_role(role)
    response = client.get(url.format(pk=bundle.pk))
    expected = GET_MATRIX[url][role_index]
    if expected == LOGIN:
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    else:
        assert response.status_code == expected


@pytest.mark.parametrize("role, allowed", [("agent", False), ("finance", False), ("manager", True)])
def test_post_change(as_role, role, allowed):
    bundle = BundleFactory(price=100)
    data = {
        "name": bundle.name,
        "slug": bundle.slug,
        "category": "daily",
        "description": "",
        "data_mb": 1024,
        "validity_hours": 24,
        "price": 130,
        "active": "on",
        "display_order": 0,
        "price_changes-TOTAL_FORMS": 0,
        "price_changes-INITIAL_FORMS": 0,
    }
    response = as_role(role).post(f"/admin/catalog/bundle/{bundle.pk}/change/", data)
    bundle.refresh_from_db()
    assert (bundle.price == 130) is allowed
    assert response.status_code == (302 if allowed else 403)


@pytest.mark.parametrize("role, allowed", [("agent", False), ("finance", False), ("manager", True)])
def test_post_retire(as_role, role, allowed):
    bundle = BundleFactory()
    response = as_role(role).post(f"/admin/catalog/bundle/{bundle.pk}/retire/", {"confirmed": "1"})
    bundle.refresh_from_db()
    assert bundle.active is (not allowed)
    assert response.status_code == (302 if allowed else 403)


@pytest.mark.parametrize("role, allowed", [("agent", False), ("finance", False), ("manager", True)])
def test_post_delete(as_role, role, allowed):
    bundle = BundleFactory()
    response = as_role(role).post(f"/admin/catalog/bundle/{bundle.pk}/delete/", {"post": "yes"})
    assert Bundle.objects.filter(pk=bundle.pk).exists() is (not allowed)
    assert response.status_code == (302 if allowed else 403)


@pytest.mark.parametrize("action", BULK_ACTIONS)
@pytest.mark.parametrize(
    "role, allowed", [("agent", False), ("finance", False), ("manager", True), ("superuser", True)]
)
def test_bulk_actions(as_role, role, allowed, action):
    bundle = BundleFactory(active=action != "activate_selected", featured=action == "unfeature_selected")
    before = (bundle.active, bundle.featured)
    as_role(role).post(
        "/admin/catalog/bundle/", {"action": action, "_selected_action": [bundle.pk], "confirmed": "1"}
    )
    bundle.refresh_from_db()
    assert ((bundle.active, bundle.featured) != before) is allowed


@pytest.mark.parametrize("action", BULK_ACTIONS)
def test_bulk_actions_anonymous_goes_to_login(client, action):
    bundle = BundleFactory()
    response = client.post("/admin/catalog/bundle/", {"action": action, "_selected_action": [bundle.pk]})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_post_import_refused_for_viewers(as_role):
    response = as_role("agent").post("/admin/catalog/bundle/process_import/", {})
    assert response.status_code == 403


def test_viewers_see_no_edit_controls(as_role):
    bundle = BundleFactory()
    html = as_role("finance").get(f"/admin/catalog/bundle/{bundle.pk}/change/").content.decode()
    assert "/retire/" not in html
    assert 'name="_save"' not in html
    changelist = as_role("finance").get("/admin/catalog/bundle/").content.decode()
    assert "/admin/catalog/bundle/import/" not in changelist
    assert "activate_selected" not in changelist
