"""A working day per role in Debian's chromium: agent, finance, catalogue manager.

Screenshots of each step go to tests/browser/screenshots/role_*.png, the key pages at a
1366×768 laptop and a 390×844 phone.
"""

import csv
import datetime as dt
import io
import os
import re
from pathlib import Path

import pytest
from django.utils import timezone

from catalog.models import Bundle
from ledger.models import OrderStatus
from reconciliation.models import Claim, ClaimStatus, DayClose, TillReceipt
from reconciliation.services.matcher import claims_reconcile
from tests.browser.conftest import both_sizes, login, screenshot
from tests.reconciliation.factories import ClaimFactory, code_for, receipt

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
STATEMENT = Path(__file__).resolve().parents[1] / "data" / "statements" / "iso_dates.csv"


def test_agent_takes_next_verifies_copies_reply_and_delivers(live_server, bundles, agent, browser_page):
    now = timezone.now()
    r = receipt(code=code_for(timezone.localdate(), "7KQ4TWA"), amount="199", paid_at=now)
    claim = ClaimFactory(
        code=r.code,
        claimed_at=now - dt.timedelta(minutes=40),
        sender_msisdn="254712345678",
        recipient_msisdn="254722000111",
        message__text=f"Hi, I paid {r.code} for 0722 000 111",
    )
    ClaimFactory(claimed_at=now - dt.timedelta(minutes=5), sender_msisdn="254733000111")
    claims_reconcile(trigger="test")
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.NEEDS_REVIEW

    page = browser_page
    login(page, live_server, "agent", "pw-agent")
    base = live_server.url
    both_sizes(page, f"{base}/admin/", "role_agent_dashboard")
    both_sizes(page, f"{base}/admin/reconciliation/claim/", "role_agent_claims_list")

    page.goto(f"{base}/admin/")
    assert page.get_by_test_id("needs-review").inner_text() == "1"
    page.get_by_test_id("take-next").click()
    page.get_by_test_id("hold-banner").filter(has_text="You hold this claim").wait_for()
    assert f"/admin/reconciliation/claim/{claim.pk}/" in page.url
    both_sizes(page, page.url, "role_agent_claim_detail")

    page.get_by_role("link", name=re.compile("Verify")).first.click()
    page.fill("#id_amount", "199")
    page.select_option("#id_bundle", label="Daily 2GB, Ksh 150 (Ksh 49 unallocated)")
    page.get_by_role("button", name="Verify and create the order").click()
    page.get_by_text(re.compile(rf"Claim {r.code} verified")).wait_for()
    reply = page.get_by_test_id("reply-text").input_value()
    page.get_by_role("button", name="Copy reply").click()  # the button is there and clickable
    screenshot(page, "role_agent_verified")
    claim = Claim.objects.select_related("order").get(pk=claim.pk)
    assert claim.held_by is None and claim.order.reference in reply

    page.get_by_role("link", name=claim.order.reference).click()
    both_sizes(page, f"{base}/admin/ledger/order/", "role_agent_orders_list")
    page.goto(f"{base}/admin/ledger/order/{claim.order.pk}/change/")
    page.get_by_role("link", name=re.compile("Mark delivered")).first.click()
    screenshot(page, "role_agent_deliver_confirm")
    page.get_by_test_id("confirm-submit").click()
    page.get_by_text(re.compile("order\\(s\\) delivered")).wait_for()
    screenshot(page, "role_agent_delivered")
    claim.order.refresh_from_db()
    assert claim.order.status == OrderStatus.DELIVERED


def test_finance_imports_a_statement_runs_the_matcher_exports_and_closes_a_day(
    live_server, finance, browser_page
):
    page = browser_page
    base = live_server.url
    login(page, live_server, "finance", "pw-finance")
    both_sizes(page, f"{base}/admin/", "role_finance_dashboard")

    page.goto(f"{base}/admin/reconciliation/statementimport/")
    page.get_by_role("link", name=re.compile("Import statement")).first.click()
    page.set_input_files("input[type=file]", str(STATEMENT))
    page.get_by_role("button", name="Preview").click()
    page.wait_for_url(re.compile(r"/statementimport/\d+/change/"))
    screenshot(page, "role_finance_statement_preview")
    page.get_by_role("link", name=re.compile("Import")).first.click()
    screenshot(page, "role_finance_statement_confirm")
    page.get_by_role("button", name=re.compile("Import|Record")).first.click()
    page.get_by_text(re.compile("Imported|Importing")).first.wait_for()
    screenshot(page, "role_finance_statement_imported")
    assert TillReceipt.objects.count() > 0

    page.goto(f"{base}/admin/reconciliation/claim/")
    page.get_by_role("link", name=re.compile("Run matcher now")).click()
    page.get_by_role("button", name="Run matcher").click()
    page.get_by_text(re.compile(r"Matcher run #\d+")).wait_for()
    screenshot(page, "role_finance_matcher_ran")

    # A week of ledger (the statement's week) downloads as CSV with the agreed columns.
    page.goto(f"{base}/admin/ledger/exportjob/")
    page.get_by_role("link", name=re.compile("New export")).first.click()
    page.fill("#id_date_from", "2025-09-04")
    page.fill("#id_date_to", "2025-09-10")
    page.select_option("#id_format", "csv")
    screenshot(page, "role_finance_export_form")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export").click()
    download = download_info.value
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert (
        rows[0][:3] == ["entry number", "date/time (Africa/Nairobi)", "account code"]
        or "entry" in rows[0][0].lower()
    )
    receipts = set(TillReceipt.objects.values_list("code", flat=True))
    assert receipts and receipts <= {r[7] for r in rows[1:]}  # every imported receipt's posting is there
    assert download.suggested_filename.endswith(".csv")

    page.goto(f"{base}/admin/reconciliation/dayclose/")
    page.get_by_role("link", name=re.compile("Close a day")).first.click()
    page.fill("#id_day", "2025-09-10")
    page.get_by_role("button", name="Show the figures").click()
    screenshot(page, "role_finance_close_figures")
    page.get_by_role("button", name="Confirm and close the day").click()
    page.get_by_text(re.compile("2025-09-10 closed")).wait_for()
    screenshot(page, "role_finance_closed")
    assert DayClose.objects.filter(day=dt.date(2025, 9, 10), closed_by=finance).exists()


def test_manager_edits_a_bundle(live_server, bundles, manager, browser_page):
    page = browser_page
    base = live_server.url
    login(page, live_server, "manager", "pw-manager")
    both_sizes(page, f"{base}/admin/", "role_manager_dashboard")
    bundle = bundles["daily-2gb"]
    page.goto(f"{base}/admin/catalog/bundle/{bundle.pk}/change/")
    page.fill("#id_name", "Daily 2GB Plus")
    screenshot(page, "role_manager_bundle_edit")
    page.locator("button[name=_save], input[name=_save]").first.click()
    page.get_by_text(re.compile("was changed successfully")).wait_for()
    screenshot(page, "role_manager_bundle_saved")
    assert Bundle.objects.get(pk=bundle.pk).name == "Daily 2GB Plus"
