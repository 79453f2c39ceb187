"""Two active bundles at one price make every till payment of that amount ambiguous: the manager is
warned before saving or importing such a price, and the import preview reads prices as shillings."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from catalog.models import Bundle
from catalog.prices import price_clash_for, price_clashes
from tests.catalog.factories import BundleFactory
from tests.catalog.test_admin import _form

pytestmark = pytest.mark.django_db

HEADER = "slug,name,category,data_mb,validity_hours,price,active,featured,display_order,description\n"


# ---- the rule (catalog.prices) -------------------------------------------------------------------
def test_a_price_another_active_bundle_has_is_a_clash_a_retired_one_is_not():
    daily = BundleFactory(name="Daily 2GB", price=150)
    BundleFactory(name="Old 1GB", price=99, active=False)
    warning = price_clash_for(price=150, active=True)
    assert "Daily 2GB" in warning
    assert "Till payments of Ksh 150 will match two bundles" in warning
    assert "every such claim will need review" in warning
    assert price_clash_for(price=150, active=True, bundle_pk=daily.pk) == ""  # itself
    assert price_clash_for(price=150, active=False) == ""  # a retired bundle never matches
    assert price_clash_for(price=99, active=True) == ""  # the other one is retired
    assert price_clashes() == []


# ---- the admin save path -------------------------------------------------------------------------
def test_saving_a_clashing_price_is_refused_until_save_anyway_is_ticked(client_for, manager, bundles):
    client = client_for(manager)
    first = client.post("/admin/catalog/bundle/add/", _form(price=150))
    html = first.content.decode()
    assert first.status_code == 200  # the form again, not a redirect
    assert "Till payments of Ksh 150 will match two bundles" in html
    assert 'name="save_anyway"' in html  # the tick is offered
    assert not Bundle.objects.filter(slug="daily-3gb").exists()

    second = client.post("/admin/catalog/bundle/add/", _form(price=150, save_anyway="on"))
    assert second.status_code == 302
    assert Bundle.objects.get(slug="daily-3gb").price == 150


def test_changing_a_price_onto_another_bundles_price_warns(client_for, manager, bundles):
    weekly = bundles["weekly-8-75gb"]
    data = _form(
        name=weekly.name, slug=weekly.slug, category="weekly", data_mb=weekly.data_mb, validity_hours=168
    )
    client = client_for(manager)
    refused = client.post(f"/admin/catalog/bundle/{weekly.pk}/change/", {**data, "price": 250})
    assert "Till payments of Ksh 250 will match two bundles" in refused.content.decode()
    assert Bundle.objects.get(pk=weekly.pk).price == 500
    # A price nobody else has saves without a question, and the tick is not offered.
    saved = client.post(f"/admin/catalog/bundle/{weekly.pk}/change/", {**data, "price": 520})
    assert saved.status_code == 302
    assert Bundle.objects.get(pk=weekly.pk).price == 520


def test_a_retired_bundle_may_share_a_price_without_a_tick(client_for, manager, bundles):
    data = _form(price=150)
    del data["active"]
    assert client_for(manager).post("/admin/catalog/bundle/add/", data).status_code == 302


def test_editing_the_name_of_a_bundle_does_not_ask_again(client_for, manager):
    a = BundleFactory(name="Daily 2GB", slug="a", price=150)
    BundleFactory(name="Daily 2GB promo", slug="b", price=150)
    data = _form(name="Daily 2GB renamed", slug="a", data_mb=a.data_mb, price=150)
    assert client_for(manager).post(f"/admin/catalog/bundle/{a.pk}/change/", data).status_code == 302


# ---- the import preview path ---------------------------------------------------------------------
def _preview(client, csv_text):
    html = client.get("/admin/catalog/bundle/import/").content.decode()
    options = re.findall(r'<option value="(\d+)"[^>]*>\s*([^<]+?)\s*</option>', html)
    fmt = next(v for v, text in options if text.lower() == "csv")
    response = client.post(
        "/admin/catalog/bundle/import/",
        {"format": fmt, "resource": "0", "import_file": SimpleUploadedFile("b.csv", csv_text.encode())},
    )
    assert response.status_code == 200
    return response.content.decode()


def test_import_preview_warns_when_the_file_makes_two_bundles_cost_the_same(client_for, manager, bundles):
    html = _preview(client_for(manager), HEADER + "daily-9gb,Daily 9GB,daily,9216,24,250,1,0,0,\n")
    warning = re.search(r'data-testid="price-clash".*?</div>', html, re.S).group(0)
    assert "Daily 5GB, Daily 9GB would all cost Ksh 250" in warning
    assert "till payments of Ksh 250 will match two bundles" in warning
    assert "process_import" in html  # still the manager's call
    assert not Bundle.objects.filter(slug="daily-9gb").exists()


def test_import_preview_has_no_warning_for_distinct_prices(client_for, manager, bundles):
    html = _preview(client_for(manager), HEADER + "daily-9gb,Daily 9GB,daily,9216,24,275,1,0,0,\n")
    assert 'data-testid="price-clash"' not in html


def _price_cells(html):
    return [c.strip() for c in re.findall(r'data-label="Price \(KES\)"[^>]*>(.*?)</td>', html, re.S)]


def test_import_preview_shows_a_price_change_in_shillings(client_for, manager, bundles):
    daily = bundles["daily-2gb"]
    row = f"{daily.slug},{daily.name},daily,{daily.data_mb},{daily.validity_hours},160,1,0,0,"
    row += f"{daily.description}\n"
    html = _preview(client_for(manager), HEADER + row)
    [cell] = _price_cells(html)
    # Not the character diff "1<del>5</del><ins>6</ins>0" that reads as 1,560.
    assert re.fullmatch(r'<span class="price-change">Ksh 150 → <ins[^>]*>Ksh 160</ins></span>', cell)
    # Every other changed column reads the same way: display order 1 → 0, not the character diff "10".
    [order] = [c.strip() for c in re.findall(r'data-label="Display order"[^>]*>(.*?)</td>', html, re.S)]
    assert re.fullmatch(r'<span class="value-change">1 → <ins[^>]*>0</ins></span>', order)
    # The preview's column headers are the form's labels, not the file's column names.
    headers = [" ".join(h.split()) for h in re.findall(r"<th[^>]*>(.*?)</th>", html, re.S)]
    assert headers[1:7] == ["Slug", "Name", "Category", "Data (MB)", "Validity (hours)", "Price (KES)"]
    new = _preview(client_for(manager), HEADER + "daily-9gb,Daily 9GB,daily,9216,24,1275,1,0,0,\n")
    assert _price_cells(new) == ["Ksh 1,275"]


# ---- the bulk "show on the storefront" action ----------------------------------------------------
def test_activating_a_retired_bundle_at_a_taken_price_warns_on_the_confirmation(client_for, manager, bundles):
    old = BundleFactory(name="Old Daily 2GB", slug="old-daily-2gb", price=150, active=False)
    spare = BundleFactory(name="Spare 1GB", slug="spare-1gb", price=95, active=False)
    client = client_for(manager)
    page = client.post(
        "/admin/catalog/bundle/", {"action": "activate_selected", "_selected_action": [old.pk, spare.pk]}
    ).content.decode()
    warning = re.search(r'data-testid="page-warning">(.*?)</div>', page, re.S).group(1)
    assert "Daily 2GB, Old Daily 2GB would all cost Ksh 150" in warning
    assert "till payments of Ksh 150 will match two bundles" in warning
    assert "Ksh 95" not in warning  # nobody else costs 95

    quiet = client.post(
        "/admin/catalog/bundle/", {"action": "activate_selected", "_selected_action": [spare.pk]}
    ).content.decode()
    assert 'data-testid="page-warning"' not in quiet
