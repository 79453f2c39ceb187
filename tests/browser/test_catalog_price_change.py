"""A manager changes a price in the admin; the storefront shows the new price."""

import os

import pytest

from tests.browser.conftest import login, screenshot

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_manager_changes_price_and_storefront_shows_it(browser_page, live_server, manager, bundles):
    page = browser_page
    daily = bundles["daily-2gb"]

    page.goto(f"{live_server.url}/")
    assert page.locator('[data-slug="daily-2gb"] [data-testid=price]').inner_text() == "Ksh 150"

    login(page, live_server, "manager", "pw-manager")
    page.goto(f"{live_server.url}/admin/catalog/bundle/")
    assert page.get_by_text("Daily 2GB").first.is_visible()
    screenshot(page, "catalog_admin_changelist")

    page.goto(f"{live_server.url}/admin/catalog/bundle/{daily.pk}/change/")
    # Ksh 1,600: no other active bundle costs that (Ksh 1,500 would clash with Monthly 25GB).
    page.fill("input[name=price]", "1600")
    screenshot(page, "catalog_bundle_change_form")
    page.click("button[name=_continue]")
    page.wait_for_load_state()
    assert page.locator("text=Ksh 1,600").first.is_visible()  # the price history inline
    screenshot(page, "catalog_bundle_after_save")

    page.goto(f"{live_server.url}/")
    assert page.locator('[data-slug="daily-2gb"] [data-testid=price]').inner_text() == "Ksh 1,600"
    screenshot(page, "catalog_storefront_1366")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "catalog_storefront_390")

    page.click('[data-slug="daily-2gb"] a.button')
    page.wait_for_url(f"{live_server.url}/pay/daily-2gb/")
    assert page.locator("[data-testid=amount]").inner_text() == "Ksh 1,600"
    screenshot(page, "catalog_pay_390")
    page.set_viewport_size({"width": 1366, "height": 768})
    screenshot(page, "catalog_pay_1366")
