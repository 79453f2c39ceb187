"""A catalogue manager's day in Debian's chromium, at a 1366×768 laptop and a 390×844 phone.

The bundle list reads in plain words, a price another active bundle has is stopped with what it
does to till matching, an imported price change reads "Ksh 150 → Ksh 160", an empty search says
so, and breadcrumbs show full names. Find anything and the timeline (an agent's pages: a manager
does not touch payments) keep the console's header. Screenshots: tests/browser/screenshots/manager_*.png
"""

import os
import re

import pytest

from catalog.models import Bundle
from tests.browser.conftest import login, screenshot
from tests.reconciliation.factories import ClaimFactory

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
HEADER = "slug,name,category,data_mb,validity_hours,price,active,featured,display_order,description\n"


# The list's column names as people read them: without the sort icons and sort-priority numbers.
COLUMN_NAMES = """() => [...document.querySelectorAll('#result_list thead th')].map(th => {
    const copy = th.cloneNode(true);
    copy.querySelectorAll('.material-symbols-outlined, .sortpriority').forEach(e => e.remove());
    return copy.textContent.replace(/\\s+/g, ' ').trim();
}).filter(Boolean).map(t => t.charAt(0).toUpperCase() + t.slice(1))"""


def at_both_sizes(page, name, url=None):
    """Screenshot the page (reloaded from `url`, if given) at both sizes; no sideways scroll on a phone."""
    for label, size in (("laptop", LAPTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        if url:
            page.goto(url)
        screenshot(page, f"manager_{name}_{label}")
        if label == "phone":
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{name} scrolls sideways on a phone ({width}px)"
    page.set_viewport_size(LAPTOP)


def breadcrumbs(page) -> list[str]:
    text = page.get_by_test_id("breadcrumbs").inner_text()
    return [part.strip() for part in text.replace("chevron_right", "›").split("›") if part.strip()]


# Anything in the header's title that is cut: an overflowing box, an ellipsis, a crumb off-screen.
CUT_CRUMBS = """() => {
    const h1 = document.querySelector('#header-inner h1');
    const cut = [];
    if (h1.scrollWidth > h1.clientWidth + 1) cut.push('title overflows');
    const crumbs = document.querySelectorAll('[data-testid=breadcrumbs] > :not(.material-symbols-outlined)');
    for (const e of crumbs) {
        const r = e.getBoundingClientRect();
        if (getComputedStyle(e).textOverflow === 'ellipsis' || r.right > window.innerWidth) {
            cut.push(e.textContent.trim());
        }
    }
    return cut;
}"""


def assert_breadcrumbs_not_cut(page):
    assert page.evaluate(CUT_CRUMBS) == []


def test_manager_day(live_server, bundles, manager, browser_page, tmp_path):
    page = browser_page
    base = live_server.url
    login(page, live_server, "manager", "pw-manager")

    # The bundle list: plain column names, no field names.
    at_both_sizes(page, "bundle_list", f"{base}/admin/catalog/bundle/")
    headers = page.evaluate(COLUMN_NAMES)
    assert {"Name", "Category", "Data", "Validity", "Price", "Display order"} <= set(headers), headers
    assert not [h for h in headers if "_" in h or "mb" in h.lower()], headers

    # Edit a price onto another active bundle's: stopped, with what it does to till matching.
    weekly = bundles["weekly-8-75gb"]
    page.goto(f"{base}/admin/catalog/bundle/{weekly.pk}/change/")
    assert breadcrumbs(page) == ["Catalogue", "Bundles", weekly.name]
    assert_breadcrumbs_not_cut(page)
    page.set_viewport_size(PHONE)
    assert breadcrumbs(page) == ["Catalogue", "Bundles", weekly.name]
    assert_breadcrumbs_not_cut(page)
    page.set_viewport_size(LAPTOP)
    page.fill("input[name=price]", "250")
    page.locator("button[name=_save]").first.click()
    warning = page.get_by_text(re.compile("Till payments of Ksh 250 will match two bundles"))
    warning.wait_for()
    assert "every such claim will need review" in warning.inner_text()
    assert Bundle.objects.get(pk=weekly.pk).price == 500  # nothing saved yet
    at_both_sizes(page, "price_clash")
    page.get_by_label("Save anyway").check()
    page.locator("button[name=_save]").first.click()
    page.get_by_text(re.compile("was changed successfully")).wait_for()
    assert Bundle.objects.get(pk=weekly.pk).price == 250

    # Import a file that moves Daily 2GB from 150 to 160: the preview says it in shillings.
    daily = bundles["daily-2gb"]
    csv_file = tmp_path / "bundles.csv"
    csv_file.write_text(
        HEADER
        + f"{daily.slug},{daily.name},daily,{daily.data_mb},{daily.validity_hours},160,1,0,0,\n"
        + "daily-9gb,Daily 9GB,daily,9216,24,750,1,0,3,\n"  # Weekly 15GB's price
    )
    page.goto(f"{base}/admin/catalog/bundle/import/")
    page.set_input_files("input[name=import_file]", str(csv_file))
    page.select_option("select[name=format]", label="csv")
    page.locator("#content button[type=submit]").first.click()
    cell = page.locator('td[data-label="Price (KES)"]').first
    cell.wait_for()
    assert cell.inner_text().strip() == "Ksh 150 → Ksh 160"
    clash = page.get_by_test_id("price-clash").inner_text()
    assert "Daily 9GB, Weekly 15GB would all cost Ksh 750" in clash
    assert "till payments of Ksh 750 will match two bundles" in clash
    at_both_sizes(page, "import_preview")

    # A search that finds nothing says so and offers the way back.
    page.goto(f"{base}/admin/catalog/bundle/?q=no-such-bundle")
    assert page.get_by_test_id("empty-title").inner_text().strip() == "No results match"
    assert "No bundles match this search" in page.get_by_test_id("empty-message").inner_text()
    at_both_sizes(page, "empty_search", f"{base}/admin/catalog/bundle/?q=no-such-bundle")
    page.get_by_test_id("clear-filters").click()
    page.get_by_text("Daily 2GB").first.wait_for()


def test_find_anything_and_the_timeline_keep_the_header(live_server, bundles, agent, browser_page):
    ClaimFactory(sender_msisdn="254712345678")
    page = browser_page
    base = live_server.url
    login(page, live_server, "agent", "pw-agent")
    at_both_sizes(page, "find", f"{base}/admin/find/?q=0712 345 678")
    assert page.locator("#site-name").inner_text().strip() == "Tillbook"
    assert breadcrumbs(page) == ["Dashboard", "Find anything"]
    page.get_by_role("link", name="open the timeline of 0712 345 678").click()
    page.wait_for_url(f"{base}/admin/customer/254712345678/")
    assert breadcrumbs(page) == ["Dashboard", "Find anything", "Customer 0712 345 678"]
    assert page.locator("#nav-sidebar, nav").first.is_visible()
    at_both_sizes(page, "timeline", page.url)
    page.get_by_test_id("breadcrumbs").get_by_role("link", name="Dashboard").click()
    page.wait_for_url(f"{base}/admin/")
