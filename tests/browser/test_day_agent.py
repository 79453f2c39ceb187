"""A support agent's day in Debian's chromium, at a 1366×768 laptop and a 390×844 phone.

Screenshots: tests/browser/screenshots/day_agent_*.png.
"""

import datetime as dt
import os
import re
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone

from ledger.models import Order, OrderStatus
from reconciliation.models import Claim, ClaimReason, ClaimStatus
from reconciliation.services.matcher import claims_reconcile
from tests.browser.conftest import LAPTOP, both_sizes, login, screenshot
from tests.reconciliation.factories import ClaimFactory, code_for, receipt

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
STAFF_NOTE = "third fake SMS from this number"


@pytest.fixture
def day(bundles):
    now = timezone.now()
    today = timezone.localdate()
    # A claim verified by the matcher, then a second claim for the same code: used.
    used = receipt(code=code_for(today), amount="150", paid_at=now - dt.timedelta(hours=3))
    first = ClaimFactory(code=used.code, claimed_at=now - dt.timedelta(hours=3), sender_msisdn="254711222333")
    # 199 is no bundle's price: needs review, amount mismatch.
    odd = receipt(code=code_for(today), amount="199", paid_at=now - dt.timedelta(minutes=50))
    mismatch = ClaimFactory(
        code=odd.code,
        claimed_at=now - dt.timedelta(minutes=45),
        sender_msisdn="254712345600",
        recipient_msisdn="254712345600",
    )
    pending = ClaimFactory(claimed_at=now - dt.timedelta(minutes=5), sender_msisdn="254733000111")
    claims_reconcile(trigger="test")
    second = ClaimFactory(
        code=used.code, claimed_at=now - dt.timedelta(hours=2), sender_msisdn="254722000444"
    )
    claims_reconcile(trigger="test")
    for claim in (first, mismatch, pending, second):
        claim.refresh_from_db()
    assert first.status == ClaimStatus.VERIFIED
    assert mismatch.reason == ClaimReason.AMOUNT_MISMATCH
    assert pending.status == ClaimStatus.PENDING
    assert second.reason == ClaimReason.CODE_ALREADY_USED
    return {"first": first, "mismatch": mismatch, "pending": pending, "second": second}


def test_agent_day(live_server, agent, browser_page, day):
    page = browser_page
    base = live_server.url
    login(page, live_server, "agent", "pw-agent")

    # ---- the queue: open claims only, needs review first, Held by on a laptop's screen ------
    both_sizes(page, f"{base}/admin/reconciliation/claim/", "day_agent_claims_list")
    rows = page.locator("#result_list tbody tr")
    codes = [rows.nth(i).inner_text() for i in range(rows.count())]
    assert len(codes) == 3  # the verified claim is not in the open queue
    assert day["second"].code in codes[0] and day["mismatch"].code in codes[1]
    assert day["pending"].code in codes[2]
    held = page.locator("#result_list thead th", has_text=re.compile("held by", re.I)).first.bounding_box()
    assert held and held["x"] + held["width"] <= LAPTOP["width"], held
    assert "0712 345 600" in page.locator("#result_list").inner_text()  # one phone format
    assert page.locator("a[href*='status__exact=all']").count() >= 1  # the filter's "All" choice
    page.goto(f"{base}/admin/reconciliation/claim/?status__exact=all")
    assert page.locator("#result_list tbody tr").count() == 4

    # ---- take next: the needs-review claim that waited longest, hold said once --------------
    page.goto(f"{base}/admin/")
    page.get_by_test_id("take-next").click()
    page.get_by_test_id("hold-banner").filter(has_text="You hold this claim").wait_for()
    assert f"/admin/reconciliation/claim/{day['second'].pk}/" in page.url
    assert page.locator("body").inner_text().lower().count("you hold") == 1

    # ---- a used code: links to the first claim and its order, no Verify --------------------
    both_sizes(page, page.url, "day_agent_used_code")
    first_use = page.get_by_test_id("first-use")
    assert day["first"].order.reference in first_use.inner_text()
    assert (
        page.get_by_test_id("first-use-claim")
        .get_attribute("href")
        .endswith(f"/reconciliation/claim/{day['first'].pk}/change/")
    )
    assert page.get_by_role("link", name=re.compile(r"^\s*\w*\s*Verify\s*$")).count() == 0
    assert page.get_by_role("link", name=re.compile("Reject")).count() >= 1

    # ---- the mismatch claim: plain check names that wrap, WhatsApp link, polite reject -----
    claim = day["mismatch"]
    both_sizes(page, f"{base}/admin/reconciliation/claim/{claim.pk}/change/", "day_agent_claim_checks")
    checks = page.get_by_test_id("checks").inner_text()
    assert "Minutes between payment and claim" in checks and "Code date matches the message" in checks
    assert "minutes_between_payment_and_claim" not in checks and "code_date_plausible" not in checks
    link = page.get_by_test_id("open-whatsapp").get_attribute("href")
    url = urlparse(link)
    assert url.netloc == "wa.me" and url.path == "/254712345600"
    assert parse_qs(url.query)["text"] == [page.get_by_test_id("reply-text").input_value()]
    assert page.get_by_role("button", name="Copy reply").is_visible()

    page.get_by_role("link", name=re.compile("Reject")).first.click()
    page.select_option("#id_reply_reason", "amount")
    page.fill("#id_reason", STAFF_NOTE)
    screenshot(page, "day_agent_reject_form_laptop")
    page.get_by_role("button", name="Reject claim").click()
    page.get_by_text(re.compile(rf"Claim {claim.code} rejected")).wait_for()
    reply = page.get_by_test_id("reply-text").input_value()
    assert reply.startswith("Sorry, the amount of payment") and STAFF_NOTE not in reply
    assert reply.endswith("- Tillbook Data Bundles")
    screenshot(page, "day_agent_rejected_laptop")
    assert Claim.objects.get(pk=claim.pk).decision_note == STAFF_NOTE

    # ---- orders: a next step per row, and only the buttons that apply ----------------------
    order = Order.objects.get(pk=day["first"].order_id)
    both_sizes(page, f"{base}/admin/ledger/order/", "day_agent_orders_list")
    row = page.locator("#result_list tbody tr", has_text=order.reference)
    assert "\tdeliver\t" in row.inner_text().lower()  # the next step (badges are upper case)
    assert "0711 222 333" in row.inner_text()
    page.goto(f"{base}/admin/ledger/order/{order.pk}/change/")
    page.get_by_role("link", name=re.compile("Mark delivered")).first.click()
    page.get_by_test_id("confirm-submit").click()
    page.get_by_text(re.compile(r"order\(s\) delivered")).wait_for()
    delivered_reply = page.get_by_test_id("whatsapp-reply").input_value()
    assert delivered_reply.endswith("- Tillbook Data Bundles")
    assert (
        page.get_by_test_id("open-whatsapp")
        .get_attribute("href")
        .startswith("https://wa.me/254711222333?text=")
    )
    screenshot(page, "day_agent_delivered_laptop")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.DELIVERED
    both_sizes(page, f"{base}/admin/ledger/order/{order.pk}/change/", "day_agent_order_delivered")
    for label in ("Mark delivered", "Send prompt again", "Cancel order"):
        assert page.get_by_role("link", name=re.compile(label)).count() == 0, label
    page.goto(f"{base}/admin/ledger/order/")
    row = page.locator("#result_list tbody tr", has_text=order.reference)
    assert "\tdelivered\t" in row.inner_text().lower() and "\tdeliver\t" not in row.inner_text().lower()
