"""An agent opens a needs-review claim in the queue and verifies it against the till receipt."""

import datetime as dt
import os
import re
from decimal import Decimal

import pytest
from django.utils import timezone

from reconciliation.models import Claim, ClaimReason, ClaimStatus
from reconciliation.services.matcher import claims_reconcile
from tests.browser.conftest import login, screenshot
from tests.reconciliation.factories import ClaimFactory, code_for, receipt

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_agent_verifies_an_amount_mismatch_claim(live_server, bundles, agent, browser_page):
    now = timezone.now()
    r = receipt(code=code_for(timezone.localdate(), "7KQ4TWX"), amount="199", paid_at=now)
    claim = ClaimFactory(
        code=r.code,
        claimed_at=now,
        sender_msisdn="254712345678",
        recipient_msisdn="254722000111",
        message__text=f"Hi, I paid {r.code} for 0722 000 111",
    )
    waiting = ClaimFactory(claimed_at=now - dt.timedelta(minutes=45), sender_msisdn="254733000111")
    claims_reconcile(trigger="test")
    claim.refresh_from_db()
    assert (claim.status, claim.reason) == (ClaimStatus.NEEDS_REVIEW, ClaimReason.AMOUNT_MISMATCH)

    page = browser_page
    login(page, live_server, "agent", "pw-agent")
    page.goto(f"{live_server.url}/admin/reconciliation/claim/")
    page.get_by_text(waiting.code).wait_for()
    page.get_by_text("45 min").wait_for()  # amber age badge for the claim waiting longest
    screenshot(page, "claims_queue")
    page.goto(f"{live_server.url}/admin/reconciliation/claim/?status__exact=needs_review")
    page.get_by_role("link", name=r.code).first.click()
    page.get_by_test_id("explanation-summary").filter(has_text="matches no bundle price").wait_for()
    screenshot(page, "claims_needs_review_detail")

    page.get_by_role("link", name=re.compile("Verify")).first.click()
    page.get_by_text("re-type its amount").wait_for()
    assert page.input_value("#id_receipt_code") == r.code
    page.fill("#id_amount", "199")
    page.select_option("#id_bundle", label="Daily 2GB, Ksh 150 (Ksh 49 unallocated)")
    screenshot(page, "claims_verify_form")
    page.get_by_role("button", name="Verify and create the order").click()
    page.get_by_text(re.compile(rf"Claim {r.code} verified")).wait_for()
    page.get_by_test_id("claim-status").filter(has_text="Verified").wait_for()
    reply = page.get_by_test_id("reply-text").input_value()
    screenshot(page, "claims_verified")

    claim = Claim.objects.select_related("order").get(pk=claim.pk)
    assert claim.status == ClaimStatus.VERIFIED and claim.decided_by == agent
    # The order is the bundle at its price; the KES 49 beyond it stays unallocated on the receipt.
    assert claim.order.price == Decimal("150.00") and claim.order.recipient_msisdn == "254722000111"
    assert claim.order.reference in reply and "Daily 2GB" in reply


def test_agent_sees_an_sms_naming_another_payee_before_verifying(live_server, bundles, agent, browser_page):
    now = timezone.now()
    r = receipt(code=code_for(timezone.localdate(), "7ZK4TWX"), amount="1500", paid_at=now)
    when = timezone.localtime(now)
    sms = (
        f"{r.code} Confirmed. Ksh1,500.00 paid to ZUKU FIBER. on {when.day}/{when.month}/{when:%y} at "
        f"{when:%I:%M %p}.New M-PESA balance is Ksh1,324.13. Transaction cost, Ksh0.00."
    )
    claim = ClaimFactory(
        code=r.code,
        claimed_at=now,
        claimed_amount=Decimal("1500"),
        claimed_merchant="ZUKU FIBER",
        message__text=sms,
    )
    claims_reconcile(trigger="test")
    claim.refresh_from_db()
    assert (claim.status, claim.reason) == (ClaimStatus.NEEDS_REVIEW, ClaimReason.OTHER_MERCHANT)

    page = browser_page
    login(page, live_server, "agent", "pw-agent")
    page.goto(f"{live_server.url}/admin/reconciliation/claim/{claim.pk}/change/")
    banner = page.get_by_test_id("other-payee-banner")
    banner.filter(has_text="paid to ZUKU FIBER, not to TILLBOOK DATA").wait_for()
    assert banner.is_visible()
    screenshot(page, "claims_other_payee_detail")
    page.get_by_role("link", name=re.compile("Verify")).first.click()
    page.get_by_test_id("page-warning").filter(has_text="ZUKU FIBER").wait_for()
    screenshot(page, "claims_other_payee_verify_form")
