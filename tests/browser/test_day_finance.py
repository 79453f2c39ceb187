"""Finance's day in Debian's chromium, at a 1366×768 laptop and a 390×844 phone: the dashboard's
sales equal the daily summary's, the daily close reads as a table with links, a statement shows
its rows before and after the import, and the trial balance's amounts line up on the right.

Screenshots: tests/browser/screenshots/finance_day_*.png.
"""

import os
import re
from pathlib import Path

import pytest
from django.utils import timezone

from ledger.models import Channel, OrderStatus
from reconciliation.models import ClaimStatus, DayClose, StatementImport, TillReceipt
from reconciliation.services.matcher import claims_reconcile
from tests.browser.conftest import both_sizes, login, screenshot
from tests.console.test_dashboard import make_order
from tests.reconciliation.factories import ClaimFactory, code_for, receipt

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
MARCH = Path(__file__).resolve().parents[1] / "data" / "reconciliation" / "statement_march.csv"


@pytest.fixture
def finance_day(bundles):
    daily, weekly = bundles["daily-2gb"], bundles["weekly-15gb"]
    now = timezone.now()
    make_order(daily, channel=Channel.STK, status=OrderStatus.DELIVERED, paid_at=now)
    make_order(weekly, channel=Channel.TILL, status=OrderStatus.DELIVERED, paid_at=now)
    make_order(daily, channel=Channel.STK, status=OrderStatus.PAID, paid_at=now)  # delivery pending
    make_order(daily, status=OrderStatus.REFUNDED, paid_at=now)
    make_order(daily, status=OrderStatus.FAILED, paid_at=None)
    # Till money today: one claimed and paid (delivery pending), one with no claim (a difference).
    claimed = receipt(code=code_for(timezone.localdate(), "7FQ4TWA"), amount="150", paid_at=now)
    ClaimFactory(code=claimed.code, claimed_at=now, sender_msisdn="254712000111")
    claims_reconcile(trigger="test")
    assert claimed.claims.get().status == ClaimStatus.VERIFIED
    unclaimed = receipt(code=code_for(timezone.localdate(), "7FQ4TWC"), amount="1500", paid_at=now)
    return {"claimed": claimed, "unclaimed": unclaimed, "sales": daily.price + weekly.price}


def test_finance_day(live_server, finance, finance_day, browser_page):
    page = browser_page
    base = live_server.url
    login(page, live_server, "finance", "pw-finance")

    # Dashboard and daily summary: one definition of sales, "paid, delivery pending" beside it.
    both_sizes(page, f"{base}/admin/", "finance_day_dashboard")
    expected = f"Ksh {finance_day['sales']:,.0f}"
    assert page.get_by_test_id("sales-today").inner_text() == expected
    pending_text = page.get_by_test_id("pending-today").inner_text()
    assert pending_text.startswith("Paid, delivery pending: Ksh 300 (2)")  # the STK order and the till one
    both_sizes(page, f"{base}/admin/ledger/journalentry/daily-summary/", "finance_day_daily_summary")
    assert page.get_by_test_id("summary-sales").inner_text() == expected
    assert page.get_by_test_id("summary-pending").inner_text() == "Ksh 300"
    amount_cell = page.get_by_test_id("sales-by-channel").locator("td.amount").first
    assert amount_cell.evaluate("e => getComputedStyle(e).textAlign") == "right"

    # Trial balance: amounts right-aligned in tabular figures.
    both_sizes(page, f"{base}/admin/ledger/account/trial-balance/", "finance_day_trial_balance")
    cells = page.get_by_test_id("trial-balance").locator("td.amount")
    assert cells.count() >= 2
    assert cells.first.evaluate("e => getComputedStyle(e).textAlign") == "right"
    assert "tabular-nums" in cells.first.evaluate("e => getComputedStyle(e).fontVariantNumeric")

    # Daily close: a table with links, the pending delivery apart, a status in words.
    day = timezone.localdate().isoformat()
    both_sizes(page, f"{base}/admin/reconciliation/dayclose/close-day/?day={day}", "finance_day_close")
    assert page.get_by_test_id("close-status").inner_text() == "1 difference to check"
    differences = page.get_by_test_id("close-differences")
    assert "1,500.00" in differences.inner_text()
    assert finance_day["claimed"].code in page.get_by_test_id("close-pending").inner_text()
    assert "{" not in page.get_by_test_id("close-figures").inner_text()  # no raw JSON
    differences.get_by_role("link", name=finance_day["unclaimed"].code).click()
    page.wait_for_url(re.compile(rf"/tillreceipt/{finance_day['unclaimed'].pk}/change/"))
    screenshot(page, "finance_day_close_link_followed")
    page.goto(f"{base}/admin/reconciliation/dayclose/close-day/?day={day}")
    page.get_by_test_id("confirm-submit").click()
    page.get_by_text(re.compile(f"{day} closed: 1 difference to check")).wait_for()
    close = DayClose.objects.get(day=timezone.localdate())
    both_sizes(page, f"{base}/admin/reconciliation/dayclose/{close.pk}/change/", "finance_day_closed_day")
    assert page.get_by_test_id("close-status").inner_text() == "1 difference to check"
    closed_differences = page.get_by_test_id("close-differences")
    assert closed_differences.get_by_role("link", name=finance_day["unclaimed"].code).count() == 1

    # Statement: the rows that will be added and skipped, then what was added and no Import button.
    page.goto(f"{base}/admin/reconciliation/statementimport/upload-statement/")
    page.set_input_files("input[type=file]", str(MARCH))
    page.get_by_role("button", name="Preview").click()
    page.wait_for_url(re.compile(r"/statementimport/\d+/change/"))
    imp = StatementImport.objects.get()
    change_url = page.url
    both_sizes(page, change_url, "finance_day_statement_preview")
    to_add = page.get_by_test_id("rows-to_add").inner_text()
    assert "Rows that will be added: 3, KES 900.00" in to_add and "UCA2MX9P3F" in to_add
    assert "M-Pesa charge" in page.get_by_test_id("rows-skipped").inner_text()
    page.get_by_role("link", name=re.compile("Import these rows")).click()
    screenshot(page, "finance_day_statement_confirm")
    page.get_by_test_id("confirm-submit").click()
    page.get_by_text(re.compile("Imported: 3 new receipts")).wait_for()
    both_sizes(page, change_url, "finance_day_statement_imported")
    assert "Rows this import added: 3, KES 900.00" in page.get_by_test_id("rows-added").inner_text()
    assert page.get_by_role("link", name=re.compile("Import these rows")).count() == 0
    assert TillReceipt.objects.filter(statement_import=imp).count() == 3
