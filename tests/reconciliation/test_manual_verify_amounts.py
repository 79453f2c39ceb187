"""Manual verification pays only a bundle the receipt covers; an overpayment stays unallocated.

The verify page offers only the bundles whose price at payment time is at most the receipt's
amount, and claim_verify refuses any other even when the form is bypassed. A receipt of 180 for
the 150 bundle makes an order priced 150; the claim-verified entry moves 150 from Unallocated to
Bundles owed and 30 stays in Unallocated on that receipt, shown as "Ksh 30 unallocated".
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import F, Sum
from django.urls import reverse

from catalog.models import BundlePriceChange
from ledger.books import books_check
from ledger.models import EntryKind, JournalEntry, Order, Posting
from ledger.services import order_mark_delivered
from reconciliation.models import ClaimReason, ClaimStatus, TillReceipt
from reconciliation.services import decisions
from reconciliation.services.errors import VerificationInvalid
from reconciliation.services.matcher import claims_reconcile

from .factories import NOW, ClaimFactory, receipt

pytestmark = pytest.mark.django_db


def review_claim(amount):
    r = receipt(amount=amount)
    claim = ClaimFactory(code=r.code)
    claims_reconcile(trigger="test", now=NOW)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.NEEDS_REVIEW and claim.reason == ClaimReason.AMOUNT_MISMATCH
    return claim, r


def verify(claim, r, bundle, user, amount=None):
    return decisions.claim_verify(
        claim_id=claim.pk, receipt_code=r.code, amount=amount or str(r.amount), bundle_id=bundle.pk, user=user
    )


def unallocated_on(code: str) -> Decimal:
    """What receipt ``code`` still holds in Unallocated receipts (credit balance, positive)."""
    postings = Posting.objects.filter(account__key="unallocated_receipts", entry__receipt_code=code)
    return -(postings.aggregate(s=Sum("amount"))["s"] or Decimal("0"))


def verify_url(claim):
    return reverse("admin:reconciliation_claim_verify", args=[claim.pk])


def offered(body: str, bundle) -> bool:
    return f'<option value="{bundle.pk}"' in body


def test_a_120_receipt_is_refused_as_the_2500_bundle_and_nothing_changes(bundles, agent):
    claim, r = review_claim("120")
    with pytest.raises(VerificationInvalid, match=r"Ksh 2,380 short") as refused:
        verify(claim, r, bundles["monthly-50gb"], agent)
    assert refused.value.message == decisions.RECEIPT_SHORT.format(
        code=r.code,
        amount="Ksh 120",
        short="Ksh 2,380",
        bundle=bundles["monthly-50gb"].name,
        price="Ksh 2,500",
    )
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.NEEDS_REVIEW and not Order.objects.exists()
    assert not JournalEntry.objects.filter(kind=EntryKind.CLAIM_VERIFIED).exists()
    assert unallocated_on(r.code) == Decimal("120.00")


def test_the_verify_page_offers_no_bundle_dearer_than_the_receipt(bundles, agent, client_for):
    claim, _ = review_claim("120")
    body = client_for(agent).get(verify_url(claim)).content.decode()
    assert not any(offered(body, b) for b in bundles.values())


def test_the_verify_page_offers_cheaper_bundles_with_the_difference(bundles, agent, client_for):
    claim, _ = review_claim("180")
    body = client_for(agent).get(verify_url(claim)).content.decode()
    assert offered(body, bundles["daily-2gb"]) and "Ksh 30 unallocated" in body
    assert not offered(body, bundles["daily-5gb"]) and not offered(body, bundles["monthly-50gb"])


def test_posting_a_dearer_bundle_past_the_page_is_refused(bundles, agent, client_for):
    claim, r = review_claim("180")
    response = client_for(agent).post(
        verify_url(claim),
        {
            "receipt_code": r.code,
            "amount": "180",
            "bundle": bundles["daily-5gb"].pk,
            "recipient": "0712345678",
        },
    )
    assert response.status_code == 200 and not Order.objects.exists()
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.NEEDS_REVIEW


def test_a_180_receipt_for_the_150_bundle_leaves_30_unallocated(bundles, agent):
    claim, r = review_claim("180")
    claim = verify(claim, r, bundles["daily-2gb"], agent)
    assert claim.status == ClaimStatus.VERIFIED and claim.bundle == bundles["daily-2gb"]
    assert claim.order.price == Decimal("150.00") and claim.order.amount_paid == Decimal("150.00")
    entry = JournalEntry.objects.get(kind=EntryKind.CLAIM_VERIFIED, order=claim.order)
    moved = {p.account.key: p.amount for p in entry.postings.select_related("account")}
    assert moved == {"unallocated_receipts": Decimal("150.00"), "bundles_owed": Decimal("-150.00")}
    assert unallocated_on(r.code) == Decimal("30.00")
    assert books_check() == []


def test_delivering_a_partly_paid_order_sells_the_price_and_keeps_the_leftover(bundles, agent):
    claim, r = review_claim("180")
    claim = verify(claim, r, bundles["daily-2gb"], agent)
    order_mark_delivered(order=claim.order, actor=agent)
    owed = Posting.objects.filter(account__key="bundles_owed").aggregate(s=Sum("amount"))["s"]
    sales = Posting.objects.filter(account__key="bundle_sales").aggregate(s=Sum("amount"))["s"]
    assert (owed, sales) == (Decimal("0.00"), Decimal("-150.00"))
    assert unallocated_on(r.code) == Decimal("30.00") and books_check() == []


def test_unallocated_balance_counts_the_leftover_of_partly_used_receipts(bundles, agent):
    claim, r = review_claim("180")
    verify(claim, r, bundles["daily-2gb"], agent)
    receipt(amount="199")  # unmatched: all of it waits
    balance = -Posting.objects.filter(account__key="unallocated_receipts").aggregate(s=Sum("amount"))["s"]
    unmatched = TillReceipt.objects.unmatched().aggregate(s=Sum("amount"))["s"]
    # The query the dashboard's check needs (console.selectors.unmatched_receipts), in SQL on any size.
    partly_used = TillReceipt.objects.filter(order__isnull=False, amount__gt=F("order__price"))
    leftover = partly_used.aggregate(s=Sum(F("amount") - F("order__price")))["s"]
    assert balance == unmatched + leftover == Decimal("229.00")


def test_the_difference_is_shown_after_verifying_and_on_the_receipt(bundles, agent, finance, client_for):
    claim, r = review_claim("180")
    response = client_for(agent).post(
        verify_url(claim),
        {
            "receipt_code": r.code,
            "amount": "180",
            "bundle": bundles["daily-2gb"].pk,
            "recipient": "0712345678",
        },
        follow=True,
    )
    assert "Ksh 30 unallocated" in response.content.decode()
    client = client_for(finance)
    listing = client.get(reverse("admin:reconciliation_tillreceipt_changelist")).content.decode()
    assert "Ksh 30 unallocated" in listing
    partly = client.get(reverse("admin:reconciliation_tillreceipt_changelist"), {"matched": "partly"})
    assert r.code in partly.content.decode()
    page = client.get(reverse("admin:reconciliation_tillreceipt_change", args=[r.pk])).content.decode()
    assert "Ksh 30 unallocated" in page


def test_an_underpayment_is_refused_with_how_much_is_short(bundles, agent):
    claim, r = review_claim("120")
    with pytest.raises(VerificationInvalid, match=r"Ksh 30 short"):
        verify(claim, r, bundles["daily-2gb"], agent)
    assert not Order.objects.exists() and unallocated_on(r.code) == Decimal("120.00")


def test_the_price_that_counts_is_the_one_at_payment_time(bundles, agent):
    daily = bundles["daily-2gb"]
    claim, r = review_claim("180")
    # Daily 2GB cost 200 when the customer paid; it costs 150 now.
    BundlePriceChange.objects.create(
        bundle=daily,
        old_price=Decimal("200.00"),
        new_price=Decimal("150.00"),
        changed_at=r.paid_at + dt.timedelta(hours=1),
    )
    with pytest.raises(VerificationInvalid, match=r"Ksh 20 short"):
        verify(claim, r, daily, agent)
    assert not Order.objects.exists()
