"""Reversing an order's payment entry: the order follows the books in the same transaction.

A paid order whose payment is reversed needs review (not deliverable); a till order's claim is
reopened and its receipt goes back to suspense with its money in Unallocated receipts. The
payment of a delivered (or refunded) order is never reversed: refund it instead.
"""

from decimal import Decimal

import pytest
from django.db.models import Sum
from django.urls import reverse

from console.models import AuditEvent
from ledger import books
from ledger import services as orders
from ledger.models import EntryKind, JournalEntry, Order, OrderStatus, Posting
from reconciliation import models as rec
from reconciliation.models import ClaimStatus, TillReceipt
from reconciliation.services.matcher import claims_reconcile
from tests.ledger.factories import OrderFactory
from tests.reconciliation.factories import NOW, ClaimFactory, receipt

pytestmark = pytest.mark.django_db
D = Decimal


def stk_order(status=OrderStatus.PAID) -> Order:
    order = OrderFactory(
        bundle__slug="reverse-test-bundle",
        bundle__active=False,
        status=status,
        gateway="payhero",
        price=D("150"),
        amount_paid=D("150"),
        mpesa_receipt="SAE3YULR0Y",
    )
    books.post_stk_payment(order=order, amount=order.price, receipt="SAE3YULR0Y", gateway="payhero")
    if status == OrderStatus.DELIVERED:
        books.post_delivery(order=order)
    return order


def verified_till_order(bundles):
    till = receipt(amount="250")
    claim = ClaimFactory(code=till.code, claimed_at=NOW)
    claims_reconcile(trigger="test", now=NOW)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.VERIFIED
    return claim, till, claim.order


def unallocated() -> Decimal:
    total = Posting.objects.filter(account__key=books.UNALLOCATED).aggregate(s=Sum("amount"))["s"]
    return -(total or D("0"))


def suspense() -> Decimal:
    return TillReceipt.objects.unmatched().aggregate(s=Sum("amount"))["s"] or D("0")


def test_reversing_a_paid_stk_orders_payment_puts_the_order_in_review(finance):
    order = stk_order()
    payment = order.journal_entries.get(kind=EntryKind.STK_PAYMENT)
    orders.entry_reverse(entry=payment, reason="Gateway says it never settled", user=finance)
    order.refresh_from_db()
    assert order.status == OrderStatus.NEEDS_REVIEW
    assert "reversed" in order.status_reason and "finance" in order.status_reason
    assert "Gateway says it never settled" in order.status_reason
    assert order.mpesa_receipt == "SAE3YULR0Y"  # the code still names that STK payment
    with pytest.raises(orders.OrderNotDeliverable):
        orders.order_mark_delivered(order=order, actor=finance)
    assert AuditEvent.objects.filter(action="order.payment_reversed", object_id=str(order.pk)).exists()
    assert books.books_check() == []


def test_reversing_a_verified_till_payment_reopens_the_claim_and_the_receipt(bundles, finance):
    claim, till, order = verified_till_order(bundles)
    assert unallocated() == 0
    payment = order.journal_entries.get(kind=EntryKind.CLAIM_VERIFIED)
    reversal = orders.entry_reverse(entry=payment, reason="Loaded the wrong number", user=finance)
    # The reversal is the exact mirror: the money goes back to Unallocated receipts.
    assert sorted(reversal.postings.values_list("account__key", "amount")) == [
        ("bundles_owed", D("250.00")),
        ("unallocated_receipts", D("-250.00")),
    ]
    order.refresh_from_db()
    claim.refresh_from_db()
    till.refresh_from_db()
    assert order.status == OrderStatus.NEEDS_REVIEW and "Loaded the wrong number" in order.status_reason
    assert order.mpesa_receipt is None  # the code is the receipt's again, free to pay a corrected order
    assert claim.status == ClaimStatus.NEEDS_REVIEW and claim.reason == rec.ClaimReason.PAYMENT_REVERSED
    assert order.reference in claim.explanation["summary"]
    assert claim.suggested_receipt == till and claim.order is None
    assert till.order is None and till.code in TillReceipt.objects.unmatched().values_list("code", flat=True)
    assert unallocated() == D("250.00") == suspense()
    assert AuditEvent.objects.filter(action="claim.payment_reversed", object_id=str(claim.pk)).exists()
    assert books.books_check() == []
    # The reopened claim can be verified again by a person against the same receipt.
    from reconciliation.services import decisions

    again = decisions.claim_verify(claim_id=claim.pk, receipt_code=till.code, amount="250", user=finance)
    assert again.status == ClaimStatus.VERIFIED and again.order != order
    assert books.books_check() == []


def test_reversing_an_stk_order_paid_from_a_till_receipt_puts_the_receipt_back_in_suspense(finance):
    from django.utils import timezone

    from ledger.models import StkStatus
    from reconciliation import tasks
    from tests.ledger.factories import StkRequestFactory

    stk = StkRequestFactory(status=StkStatus.UNKNOWN, checkout_request_id=None, gateway_reference="")
    till = receipt(code="UKU7AB12CD", paid_at=timezone.now())
    assert tasks.reconcile()["unknown_prompt_paid"] == 1
    order = Order.objects.get(pk=stk.order_id)
    payment = order.journal_entries.get(kind=EntryKind.CLAIM_VERIFIED)
    orders.entry_reverse(entry=payment, reason="Not this customer's payment", user=finance)
    order.refresh_from_db()
    till.refresh_from_db()
    assert order.status == OrderStatus.NEEDS_REVIEW and order.mpesa_receipt is None
    assert till.order is None and unallocated() == till.amount == suspense()
    assert books.books_check() == []


def test_reversing_a_delivered_orders_payment_is_refused_and_posts_nothing(finance):
    order = stk_order(status=OrderStatus.DELIVERED)
    payment = order.journal_entries.get(kind=EntryKind.STK_PAYMENT)
    entries = JournalEntry.objects.count()
    with pytest.raises(books.EntryNotReversible) as exc:
        orders.entry_reverse(entry=payment, reason="mistake", user=finance)
    assert exc.value.message == books.PAYMENT_OF_DELIVERED_ORDER.format(reference=order.reference)
    assert "refund" in exc.value.message.lower()
    assert JournalEntry.objects.count() == entries
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert books.books_check() == []


def test_reversing_a_refunded_orders_payment_is_refused(finance):
    order = stk_order()
    orders.order_refund(order=order, reason="customer asked", user=finance)
    payment = order.journal_entries.get(kind=EntryKind.STK_PAYMENT)
    with pytest.raises(books.EntryNotReversible):
        orders.entry_reverse(entry=payment, reason="mistake", user=finance)
    assert books.books_check() == []


def test_claim_undo_still_cancels_the_order(bundles, finance):
    from reconciliation.services import decisions

    claim, till, order = verified_till_order(bundles)
    decisions.claim_verification_undo(claim_id=claim.pk, reason="Wrong number", user=finance)
    order.refresh_from_db()
    till.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED and till.order is None
    assert unallocated() == D("250.00") == suspense()
    assert books.books_check() == []


# --- the admin's Reverse entry ----------------------------------------------------------------
def _reverse_url(entry):
    return reverse("admin:ledger_journalentry_reverse_entry", args=[entry.pk])


def test_admin_says_what_reversing_a_payment_does_to_the_order(client_for, finance):
    order = stk_order()
    payment = order.journal_entries.get(kind=EntryKind.STK_PAYMENT)
    page = client_for(finance).get(_reverse_url(payment)).content.decode()
    assert "needs review" in page.lower() and order.reference in page
    client_for(finance).post(_reverse_url(payment), {"confirmed": "1", "reason": "Gateway reversed it"})
    order.refresh_from_db()
    assert order.status == OrderStatus.NEEDS_REVIEW


def test_admin_refuses_to_reverse_a_delivered_orders_payment(client_for, finance):
    order = stk_order(status=OrderStatus.DELIVERED)
    payment = order.journal_entries.get(kind=EntryKind.STK_PAYMENT)
    client = client_for(finance)
    response = client.get(_reverse_url(payment), follow=True)
    assert books.PAYMENT_OF_DELIVERED_ORDER.format(reference=order.reference) in response.content.decode()
    client.post(_reverse_url(payment), {"confirmed": "1", "reason": "mistake"})
    assert not JournalEntry.objects.filter(kind=EntryKind.REVERSAL).exists()
