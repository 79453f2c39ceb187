"""The catalogue admin as a manager uses it."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages

from catalog.models import Bundle, BundlePriceChange
from catalog.services import BUNDLE_HAS_ORDERS
from tests.catalog.factories import BundleFactory, order_for

pytestmark = pytest.mark.django_db


def _form(**overrides):
    data = {
        "name": "Daily 3GB",
        "slug": "daily-3gb",
        "category": "daily",
        "description": "",
        "data_mb": 3072,
        "validity_hours": 24,
        "price": 200,
        "active": "on",
        "display_order": 0,
        "price_changes-TOTAL_FORMS": 0,
        "price_changes-INITIAL_FORMS": 0,
    }
    data.update(overrides)
    return data


# ---- smoke: changelist, search, add, change per model ---------------------------------------


def test_bundle_changelist_search_add_change_pages_render(client_for, superuser, bundles):
    client = client_for(superuser)
    assert "Daily 2GB" in client.get("/admin/catalog/bundle/").content.decode()
    found = client.get("/admin/catalog/bundle/?q=weekly").content.decode()
    assert "Weekly 15GB" in found and "Daily 2GB" not in found
    assert client.get("/admin/catalog/bundle/add/").status_code == 200
    page = client.get(f"/admin/catalog/bundle/{bundles['daily-2gb'].pk}/change/").content.decode()
    assert "price history" in page.lower()


def test_price_change_changelist_search_and_change_render(client_for, superuser, manager):
    bundle = BundleFactory(name="Daily 9GB")
    BundlePriceChange.objects.create(
        bundle=bundle,
        old_price=None,
        new_price=bundle.price,
        changed_by=manager,
        changed_at="2026-01-01T00:00Z",
    )
    client = client_for(superuser)
    assert "Daily 9GB" in client.get("/admin/catalog/bundlepricechange/?q=9GB").content.decode()
    change = BundlePriceChange.objects.get()
    assert client.get(f"/admin/catalog/bundlepricechange/{change.pk}/change/").status_code == 200
    assert client.get("/admin/catalog/bundlepricechange/add/").status_code == 403


def test_price_range_filter(client_for, manager):
    BundleFactory(name="Cheap", price=50)
    BundleFactory(name="Dear", price=2000)
    html = client_for(manager).get("/admin/catalog/bundle/?price_from=100&price_to=3000").content.decode()
    assert "Dear" in html and ">Cheap<" not in html


# ---- writes ---------------------------------------------------------------------------------


def test_adding_in_admin_records_first_price_with_the_manager(client_for, manager):
    response = client_for(manager).post("/admin/catalog/bundle/add/", _form())
    assert response.status_code == 302
    change = Bundle.objects.get(slug="daily-3gb").price_changes.get()
    assert (change.old_price, change.new_price, change.changed_by, change.source) == (
        None,
        Decimal("200"),
        manager,
        "admin",
    )


def test_price_with_cents_in_admin_is_a_form_error_and_saves_nothing(client_for, manager):
    response = client_for(manager).post("/admin/catalog/bundle/add/", _form(price="199.50"))
    assert response.status_code == 200
    assert "whole shillings" in response.content.decode()
    assert not Bundle.objects.exists()


def test_editing_the_price_shows_in_the_history_inline(client_for, manager):
    client = client_for(manager)
    client.post("/admin/catalog/bundle/add/", _form())
    bundle = Bundle.objects.get(slug="daily-3gb")
    client.post(f"/admin/catalog/bundle/{bundle.pk}/change/", _form(price=220))
    page = client.get(f"/admin/catalog/bundle/{bundle.pk}/change/").content.decode()
    assert "Ksh 200" in page and "Ksh 220" in page
    assert bundle.price_changes.count() == 2


def test_display_order_is_editable_in_the_list(client_for, manager):
    bundle = BundleFactory(display_order=1)
    response = client_for(manager).post(
        "/admin/catalog/bundle/",
        {
            "form-TOTAL_FORMS": 1,
            "form-INITIAL_FORMS": 1,
            "form-0-id": bundle.pk,
            "form-0-display_order": 7,
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    bundle.refresh_from_db()
    assert bundle.display_order == 7


def test_bulk_action_asks_for_confirmation_first(client_for, manager):
    bundle = BundleFactory(active=True)
    client = client_for(manager)
    page = client.post(
        "/admin/catalog/bundle/", {"action": "deactivate_selected", "_selected_action": [bundle.pk]}
    )
    assert page.status_code == 200
    assert "Hide these bundles from the storefront?" in page.content.decode()
    bundle.refresh_from_db()
    assert bundle.active
    done = client.post(
        "/admin/catalog/bundle/",
        {"action": "deactivate_selected", "_selected_action": [bundle.pk], "confirmed": "1"},
    )
    assert done.status_code == 302
    bundle.refresh_from_db()
    assert not bundle.active


def test_retire_asks_then_retires(client_for, manager):
    bundle = BundleFactory()
    client = client_for(manager)
    page = client.get(f"/admin/catalog/bundle/{bundle.pk}/retire/")
    assert f"Retire “{bundle.name}”?" in page.content.decode()
    bundle.refresh_from_db()
    assert bundle.active
    client.post(f"/admin/catalog/bundle/{bundle.pk}/retire/", {"confirmed": "1"})
    bundle.refresh_from_db()
    assert not bundle.active


def test_bundle_with_orders_cannot_be_deleted_and_says_why(client_for, manager):
    bundle = BundleFactory()
    order_for(bundle)
    client = client_for(manager)
    response = client.get(f"/admin/catalog/bundle/{bundle.pk}/delete/")
    assert response.status_code == 302
    assert response["Location"].endswith(f"/admin/catalog/bundle/{bundle.pk}/change/")
    assert BUNDLE_HAS_ORDERS in [str(m) for m in get_messages(response.wsgi_request)]
    client.post(f"/admin/catalog/bundle/{bundle.pk}/delete/", {"post": "yes"})
    assert Bundle.objects.filter(pk=bundle.pk).exists()
    change_page = client.get(f"/admin/catalog/bundle/{bundle.pk}/change/").content.decode()
    assert f"/admin/catalog/bundle/{bundle.pk}/delete/" not in change_page


def test_export_csv(client_for, agent, bundles):
    response = client_for(agent).post(
        "/admin/catalog/bundle/export/",
        {"format": "0", "resource": "0", **{f"bundleresource_{f}": "on" for f in ("slug", "name", "price")}},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.splitlines()[0].startswith("slug,name")
    assert "daily-2gb,Daily 2GB,150" in body
