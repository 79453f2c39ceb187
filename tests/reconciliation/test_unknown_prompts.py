"""A till receipt can be the only news of an STK prompt whose send timed out: it pays that order
when exactly one unknown prompt fits it by payer, amount and time, and never otherwise."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from ledger import services
from ledger.models import JournalEntry, OrderStatus, StkStatus
from reconciliation import tasks
from reconciliation.models import ReceiptSource, TillReceipt
from reconciliation.services.receipts import ReceiptDraft, receipt_record_one
from tests.ledger.factories import StkRequestFactory

pytestmark = pytest.mark.django_db


def unknown_send(phone="254712345678", **kw):
    return StkRequestFactory(
        status=StkStatus.UNKNOWN,
        checkout_request_id=None,
        gateway_reference="",
        order__payer_msisdn=phone,
        **kw,
    )


def till_receipt(code, *, amount="150", paid_at=None, payer="2547 ***** 678"):
    obj, _ = receipt_record_one(
        ReceiptDraft(
            code=code,
            amount=Decimal(amount),
            paid_at=paid_at or timezone.now(),
            source=ReceiptSource.C2B,
            payer_masked=payer,
        )
    )
    return obj


def test_the_one_fitting_receipt_pays_the_unknown_send():
    stk = unknown_send()
    receipt = till_receipt("UKU7AB12CD", paid_at=stk.created_at + dt.timedelta(seconds=40))
    counts = tasks.reconcile()
    assert counts["unknown_prompt_paid"] == 1
    stk.refresh_from_db()
    stk.order.refresh_from_db()
    receipt.refresh_from_db()
    assert stk.status == StkStatus.SUCCESS and stk.receipt == "UKU7AB12CD"
    assert stk.order.status == OrderStatus.PAID and stk.order.mpesa_receipt == "UKU7AB12CD"
    assert receipt.order == stk.order
    # Two entries: the till receipt (Dr till / Cr unallocated) and the payment from it.
    assert JournalEntry.objects.count() == 2
    call_command("check_books")
    assert tasks.reconcile().get("unknown_prompt_paid") is None  # idempotent


@pytest.mark.parametrize(
    ("payer", "amount", "offset"),
    [
        ("2547 ***** 679", "150", 40),  # another customer
        ("2547 ***** 678", "100", 40),  # another amount
        ("2547 ***** 678", "150", -3600),  # paid before the prompt was sent
        ("ec59ead34e9e674f659b8602d4742a5053 ***** 134b8da0889ccb542bb64bb95", "150", 40),  # a hash
    ],
)
def test_a_receipt_that_does_not_fit_pays_nothing(payer, amount, offset):
    stk = unknown_send()
    till_receipt(
        "UKU7AB12CD", amount=amount, payer=payer, paid_at=stk.created_at + dt.timedelta(seconds=offset)
    )
    tasks.reconcile()
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.PENDING_PAYMENT and stk.order.mpesa_receipt is None
    assert TillReceipt.objects.get().order is None


def test_two_fitting_receipts_or_two_fitting_prompts_are_left_for_a_person():
    stk = unknown_send()
    till_receipt("UKU7AB12CD", paid_at=stk.created_at + dt.timedelta(seconds=30))
    till_receipt("UKU7AB12CE", paid_at=stk.created_at + dt.timedelta(seconds=60))
    assert tasks.reconcile()["unknown_prompt_ambiguous"] == 1
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.PENDING_PAYMENT


def test_one_receipt_fitting_two_unknown_sends_pays_neither():
    first = unknown_send()
    second = unknown_send(order__bundle=first.order.bundle)
    assert services.unknown_prompts_open() == [first, second]
    till_receipt("UKU7AB12CD", paid_at=second.created_at + dt.timedelta(seconds=30))
    tasks.reconcile()
    for stk in (first, second):
        stk.order.refresh_from_db()
        assert stk.order.status == OrderStatus.PENDING_PAYMENT


def test_a_queued_prompt_is_never_paid_by_a_receipt():
    """Prompts with a gateway id are settled by their callback or status query, not by guessing."""
    stk = StkRequestFactory()
    till_receipt("UKU7AB12CD", paid_at=stk.created_at + dt.timedelta(seconds=40))
    tasks.reconcile()
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.PENDING_PAYMENT
