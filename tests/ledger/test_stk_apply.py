"""stk_apply_result: the one place a gateway's answer changes an order, for every ResultCode."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from console.models import AuditEvent
from ledger import services
from ledger.gateways import StkResult, status_for_result_code
from ledger.models import JournalEntry, OrderStatus, Posting, StkStatus
from tests.ledger.factories import StkRequestFactory, ledger_settings  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ledger_settings")]


def result_for(stk, code, *, amount=None, receipt="SAE3YULR0Y", desc="", status=None):
    code = str(code)
    status = status or status_for_result_code(code)
    return StkResult(
        status=status,
        checkout_request_id=stk.checkout_request_id,
        external_reference=None,
        merchant_request_id=stk.merchant_request_id,
        result_code=code,
        result_desc=desc,
        receipt=receipt if status == "success" else None,
        amount=(amount if amount is not None else stk.amount) if status == "success" else None,
        phone=stk.phone,
        paid_at=datetime(2025, 1, 15, 7, 21, 15, tzinfo=UTC) if status == "success" else None,
        raw={},
    )


def balances():
    totals = {}
    for p in Posting.objects.select_related("account"):
        totals[p.account.key] = totals.get(p.account.key, Decimal("0")) + p.amount
    return totals


def test_success_pays_the_order_and_books_it_once():
    stk = StkRequestFactory()
    outcome = services.stk_apply_result(stk=stk, result=result_for(stk, 0))
    order = stk.order
    order.refresh_from_db()
    stk.refresh_from_db()
    assert outcome == services.APPLIED
    assert order.status == OrderStatus.PAID
    assert order.mpesa_receipt == "SAE3YULR0Y"
    assert order.amount_paid == Decimal("150.00")
    assert order.paid_at == datetime(2025, 1, 15, 7, 21, 15, tzinfo=UTC)
    assert stk.status == StkStatus.SUCCESS and stk.receipt == "SAE3YULR0Y"
    entry = JournalEntry.objects.get(order=order)
    assert entry.kind == "stk_payment"
    assert balances() == {"stk_clearing_simulator": Decimal("150.00"), "bundles_owed": Decimal("-150.00")}
    assert (
        AuditEvent.objects.filter(action="stk.paid", source="callback", object_id=str(order.pk)).count() == 1
    )


def test_the_same_success_twice_changes_nothing_the_second_time():
    stk = StkRequestFactory()
    services.stk_apply_result(stk=stk, result=result_for(stk, 0))
    second = services.stk_apply_result(stk=stk, result=result_for(stk, 0))
    assert second == services.DUPLICATE
    assert JournalEntry.objects.count() == 1
    assert AuditEvent.objects.filter(action__startswith="stk.paid").count() == 1


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (1032, "You cancelled the request"),
        (1031, "You cancelled the request"),
        (1, "Insufficient M-Pesa balance"),
        (1037, "Phone unreachable"),
        (1036, "Phone unreachable"),
        (2001, "Wrong M-Pesa PIN"),
        (1019, "The request expired"),
        (1001, "Another M-Pesa transaction is in progress on this phone; try again in a minute"),
        (9999, "M-Pesa had an internal error; try again"),
    ],
)
def test_failure_codes_fail_the_order_in_plain_words(code, message):
    stk = StkRequestFactory()
    assert services.stk_apply_result(stk=stk, result=result_for(stk, code)) == services.APPLIED
    order = stk.order
    order.refresh_from_db()
    stk.refresh_from_db()
    assert order.status == OrderStatus.FAILED
    assert order.status_reason == message
    assert stk.status == StkStatus.FAILED and stk.result_code == str(code)
    assert JournalEntry.objects.count() == 0


def test_unknown_failure_code_keeps_the_gateway_text():
    stk = StkRequestFactory()
    services.stk_apply_result(stk=stk, result=result_for(stk, 7777, desc="[STK_CB - ]Something odd."))
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.FAILED
    assert stk.order.status_reason == "Something odd."


@pytest.mark.parametrize("code", ["4999", "500.001.1001"])
def test_pending_changes_nothing(code):
    stk = StkRequestFactory()
    assert services.stk_apply_result(stk=stk, result=result_for(stk, code)) == services.PENDING
    stk.refresh_from_db()
    stk.order.refresh_from_db()
    assert stk.status == StkStatus.QUEUED
    assert stk.order.status == OrderStatus.PENDING_PAYMENT


def test_wrong_amount_needs_review_and_holds_the_money_as_unallocated():
    stk = StkRequestFactory()
    services.stk_apply_result(stk=stk, result=result_for(stk, 0, amount=Decimal("100")))
    order = stk.order
    order.refresh_from_db()
    assert order.status == OrderStatus.NEEDS_REVIEW
    assert order.status_reason == services.AMOUNT_MISMATCH.format(
        paid=Decimal("100"), price=Decimal("150.00")
    )
    assert order.amount_paid == Decimal("100")
    assert balances() == {
        "stk_clearing_simulator": Decimal("100.00"),
        "unallocated_receipts": Decimal("-100.00"),
    }


def test_late_failure_never_undoes_a_payment():
    stk = StkRequestFactory()
    services.stk_apply_result(stk=stk, result=result_for(stk, 0))
    assert services.stk_apply_result(stk=stk, result=result_for(stk, 1032)) == services.DUPLICATE
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.PAID


def test_success_after_expiry_still_pays_the_order():
    stk = StkRequestFactory(status=StkStatus.EXPIRED, order__status=OrderStatus.EXPIRED)
    services.stk_apply_result(stk=stk, result=result_for(stk, 0))
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.PAID
    assert JournalEntry.objects.count() == 1


def test_success_after_cancel_is_held_for_review():
    stk = StkRequestFactory(order__status=OrderStatus.CANCELLED)
    services.stk_apply_result(stk=stk, result=result_for(stk, 0))
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.NEEDS_REVIEW
    assert "cancelled" in stk.order.status_reason
    assert balances()["unallocated_receipts"] == Decimal("-150.00")


def test_a_second_prompt_paid_on_a_paid_order_is_booked_not_lost():
    first = StkRequestFactory()
    services.stk_apply_result(stk=first, result=result_for(first, 0, receipt="SAE3YULR0Y"))
    second = StkRequestFactory(order=first.order)
    assert (
        services.stk_apply_result(stk=second, result=result_for(second, 0, receipt="SAE3YULR0Z")) == "applied"
    )
    assert JournalEntry.objects.count() == 2
    assert balances()["unallocated_receipts"] == Decimal("-150.00")
    first.order.refresh_from_db()
    assert first.order.mpesa_receipt == "SAE3YULR0Y"
    # The order still has one payment for its bundle; the extra money is unallocated, not an error.
    from ledger.books import books_check

    assert books_check() == []


def test_a_receipt_already_paying_another_order_is_refused():
    StkRequestFactory(order__status=OrderStatus.PAID, order__mpesa_receipt="SAE3YULR0Y")
    stk = StkRequestFactory()
    with pytest.raises(services.ReceiptAlreadyUsed):
        services.stk_apply_result(stk=stk, result=result_for(stk, 0, receipt="SAE3YULR0Y"))
    stk.refresh_from_db()
    assert stk.status == StkStatus.QUEUED
    assert JournalEntry.objects.count() == 0


def test_an_old_prompt_failing_does_not_fail_an_order_with_a_newer_prompt_out():
    old = StkRequestFactory()
    StkRequestFactory(order=old.order)
    services.stk_apply_result(stk=old, result=result_for(old, 1032))
    old.order.refresh_from_db()
    assert old.order.status == OrderStatus.PENDING_PAYMENT


def test_query_success_without_receipt_then_callback_brings_the_receipt():
    stk = StkRequestFactory()
    services.stk_apply_result(stk=stk, result=result_for(stk, 0, receipt=None), source="query")
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.PAID and stk.order.mpesa_receipt is None
    assert services.stk_apply_result(stk=stk, result=result_for(stk, 0)) == services.APPLIED
    stk.order.refresh_from_db()
    assert stk.order.mpesa_receipt == "SAE3YULR0Y"
    assert JournalEntry.objects.count() == 1
