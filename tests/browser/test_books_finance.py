"""Finance works the books in a real browser: trial balance, summary, reversal, adjustment, export."""

import os
from decimal import Decimal

import pytest

from console.kernel.clock import today as nairobi_today
from ledger import books
from ledger.books import exports
from ledger.models import EntryKind, ExportJob, JournalEntry, OrderStatus
from tests.browser.conftest import login, screenshot
from tests.ledger.factories import OrderFactory

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def books_with_sales(bundles):
    bundle = bundles["daily-2gb"]
    for i, gateway in enumerate(["payhero", "daraja"]):
        order = OrderFactory(bundle=bundle, status=OrderStatus.PAID, gateway=gateway, price=bundle.price)
        books.post_stk_payment(order=order, amount=bundle.price, receipt=f"SAE3YULR{i}Y", gateway=gateway)
    books.post_till_receipt(code="TK1ABC2DEF", amount=Decimal("99.00"), paid_at=None)


def test_finance_reads_the_books_and_reverses_an_entry(browser_page, live_server, finance, books_with_sales):
    page = browser_page
    today = nairobi_today()
    login(page, live_server, "finance", "pw-finance")

    page.goto(f"{live_server.url}/admin/ledger/account/trial-balance/")
    status = page.locator("#trial-balance-status")
    assert "Balanced" in status.inner_text() and "399.00" in status.inner_text()
    screenshot(page, "books_trial_balance")

    page.goto(f"{live_server.url}/admin/ledger/journalentry/daily-summary/")
    assert page.get_by_text("Sales by channel").is_visible()
    screenshot(page, "books_daily_summary")

    page.goto(f"{live_server.url}/admin/ledger/journalentry/")
    screenshot(page, "books_journal")
    entry = JournalEntry.objects.get(number="JE-000001")
    page.goto(f"{live_server.url}/admin/ledger/journalentry/{entry.pk}/change/")
    page.get_by_role("link", name="Reverse entry").click()
    page.fill("textarea[name=reason]", "Posted against the wrong order")
    screenshot(page, "books_reverse_confirm")
    page.get_by_role("button", name="Post reversal").click()
    page.wait_for_url("**/change/")
    assert "reversed by JE-000004" in page.content()
    assert JournalEntry.objects.get(kind=EntryKind.REVERSAL).reverses_id == entry.pk

    page.goto(f"{live_server.url}/admin/ledger/journalentry/post_adjustment/")
    page.select_option("select[name=account_0]", "mpesa_till")
    page.fill("input[name=debit_0]", "10")
    page.select_option("select[name=account_1]", "unallocated_receipts")
    page.fill("input[name=credit_1]", "9")
    page.fill("textarea[name=reason]", "Till statement line 3")
    page.get_by_role("button", name="Post adjustment").click()
    assert page.get_by_text("must be equal").is_visible()
    screenshot(page, "books_adjustment_unbalanced")
    assert not JournalEntry.objects.filter(kind=EntryKind.ADJUSTMENT).exists()

    page.goto(f"{live_server.url}/admin/ledger/exportjob/new_export/")
    screenshot(page, "books_export_form")
    job = ExportJob.objects.create(
        created_by=finance, filters=exports.export_filters(date_from=today, date_to=today)
    )
    exports.run_export_job(job.pk)
    page.goto(f"{live_server.url}/admin/ledger/exportjob/")
    assert page.locator(f'a[href$="/exportjob/{job.pk}/download/"]').is_visible()
    screenshot(page, "books_export_jobs")
