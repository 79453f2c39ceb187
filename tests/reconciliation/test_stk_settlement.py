"""A till receipt whose code is an STK receipt is the settlement of that STK payment, not new money.

Buy Goods STK money lands in the till, so the statement (and C2B) shows it again: it books
Dr M-Pesa till / Cr STK clearing once, is linked to the STK order, stays out of suspense, and a
WhatsApp claim of its code is answered "already paid by STK". One bad claim never stops a run.
"""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Sum
from django.utils import timezone

from catalog.models import Bundle
from console.models import AuditEvent
from ledger import books
from ledger import services as orders
from ledger.gateways.base import StkResult
from ledger.models import Channel, EntryKind, JournalEntry, Order, OrderStatus, Posting, StkStatus
from reconciliation import models as rec
from reconciliation import tasks
from reconciliation.models import ClaimReason, ClaimStatus, ReceiptSource, TillReceipt
from reconciliation.services import receipts as svc
from reconciliation.services.matcher import claims_reconcile
from tests.ledger.factories import OrderFactory, StkRequestFactory

from .factories import NOW, ClaimFactory, receipt

pytestmark = pytest.mark.django_db
D = Decimal
NAIROBI = ZoneInfo("Africa/Nairobi")
STK_CODE = "UCA6KP2R8T"
TILL_CODE = "UCA1KQ7T4D"
STATEMENT_HEAD = (
    "Organisation Name:,TILLBOOK DATA LTD\n"
    "Organisation Short Code:,6944804\n"
    "Time Period:,10-03-2026 - 10-03-2026\n\n"
    "Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,Withdrawn,Balance,"
    "Balance Confirmed,Reason Type,Other Party Info,Linked Transaction ID,A/C No.\n"
)


def statement(*rows: tuple[str, str, str]) -> bytes:
    """A statement export with one Completed paid-in row per (code, HH:MM:SS, amount)."""
    lines = [
        f"{code},10-03-2026 {at},10-03-2026 {at},Merchant Payment from 0712***678 - JOHN KAMAU,Completed,"
        f"{amount},,{amount},TRUE,Customer Merchant Payment,6944804 - TILLBOOK DATA,,"
        for code, at, amount in rows
    ]
    return (STATEMENT_HEAD + "\n".join(lines) + "\n").encode()


def import_statement(data: bytes):
    imp = svc.statement_import_create(data=data, filename="statement.csv")
    return svc.statement_import_start(import_id=imp.pk, inline=True)


def stk_success(stk, code: str, amount: Decimal, *, minutes_ago: int) -> StkResult:
    """The gateway's confirmed success for ``stk``: receipt ``code`` of ``amount``."""
    return StkResult(
        status="success",
        checkout_request_id=stk.checkout_request_id,
        external_reference=None,
        merchant_request_id=stk.merchant_request_id,
        result_code="0",
        result_desc="The service request is processed successfully.",
        receipt=code,
        amount=amount,
        phone=stk.phone,
        paid_at=NOW - dt.timedelta(minutes=minutes_ago),
        raw={},
    )


def stk_paid(code=STK_CODE, amount="150", gateway="daraja") -> Order:
    """An STK order for the catalogue's Daily 2GB, paid the way a confirmed callback pays it."""
    bundle = Bundle.objects.get(slug="daily-2gb")
    stk = StkRequestFactory(
        order__bundle=bundle, order__gateway=gateway, order__price=D(amount), amount=D(amount)
    )
    assert orders.stk_apply_result(stk=stk, result=stk_success(stk, code, D(amount), minutes_ago=30)) == (
        orders.APPLIED
    )
    order = Order.objects.get(pk=stk.order_id)
    assert order.status == OrderStatus.PAID and order.mpesa_receipt == code
    return order


def second_stk_payment(order: Order, code: str) -> None:
    """A second prompt on the same order was paid too: real money, held in Unallocated."""
    second = StkRequestFactory(order=order, amount=D("150"))
    orders.stk_apply_result(stk=second, result=stk_success(second, code, D("150"), minutes_ago=20))


def balance(key: str) -> Decimal:
    return Posting.objects.filter(account__key=key).aggregate(s=Sum("amount"))["s"] or D("0")


def lines_for(code: str) -> list[tuple[str, Decimal]]:
    """Every till-side posting booked under ``code`` (STK payment entries left out)."""
    return sorted(
        Posting.objects.filter(entry__receipt_code=code)
        .exclude(entry__kind=EntryKind.STK_PAYMENT)
        .values_list("account__key", "amount")
    )


def unmatched_codes() -> set[str]:
    return set(TillReceipt.objects.unmatched().values_list("code", flat=True))


def suspense_agrees_with_unallocated():
    suspense = TillReceipt.objects.unmatched().aggregate(s=Sum("amount"))["s"] or D("0")
    assert -balance(books.UNALLOCATED) == suspense


# --- the settlement ---------------------------------------------------------------------------
def test_statement_row_of_an_stk_receipt_books_one_settlement_not_a_second_receipt(bundles):
    order = stk_paid()
    import_statement(statement((TILL_CODE, "08:01:12", "150.00"), (STK_CODE, "11:30:00", "150.00")))
    assert lines_for(STK_CODE) == [("mpesa_till", D("150.00")), ("stk_clearing_daraja", D("-150.00"))]
    assert JournalEntry.objects.filter(receipt_code=STK_CODE, kind=EntryKind.TILL_RECEIPT).count() == 1
    assert balance("stk_clearing_daraja") == 0  # the STK money reached the till: clearing is clear
    assert unmatched_codes() == {TILL_CODE}  # the suspense list shows only real unallocated money
    suspense_agrees_with_unallocated()
    settled = TillReceipt.objects.get(code=STK_CODE)
    assert settled.order == order and settled.settlement == rec.SettlementState.SETTLED
    assert settled.source == ReceiptSource.STATEMENT
    assert books.books_check() == []


def test_c2b_confirmation_of_an_stk_receipt_is_its_settlement(bundles):
    order = stk_paid(gateway="payhero")
    trans_time = (timezone.now() - dt.timedelta(hours=1)).astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")
    payload = {
        "TransactionType": "Buy Goods",
        "TransID": STK_CODE,
        "TransTime": trans_time,
        "TransAmount": "150.00",
        "BusinessShortCode": "6944804",
        "MSISDN": "2547 ***** 678",
        "FirstName": "JOHN",
    }
    got, created = svc.receipt_record_c2b(payload=payload)
    assert created
    assert lines_for(STK_CODE) == [("mpesa_till", D("150.00")), ("stk_clearing_payhero", D("-150.00"))]
    assert balance("stk_clearing_payhero") == 0 and balance(books.UNALLOCATED) == 0
    assert unmatched_codes() == set()
    got.refresh_from_db()
    assert got.order == order and got.settlement == rec.SettlementState.SETTLED
    assert svc.receipt_record_c2b(payload=payload)[1] is False  # one code, one receipt
    assert JournalEntry.objects.filter(kind=EntryKind.TILL_RECEIPT).count() == 1
    assert books.books_check() == []


def test_settlement_of_a_different_amount_goes_to_review_and_clearing_keeps_the_difference(bundles):
    order = stk_paid(amount="150")
    import_statement(statement((STK_CODE, "11:30:00", "250.00")))
    # The till got what it got; STK clearing keeps what the gateway confirmed but the till did not show.
    assert lines_for(STK_CODE) == [("mpesa_till", D("250.00")), ("stk_clearing_daraja", D("-250.00"))]
    assert balance("stk_clearing_daraja") == D("-100.00")
    assert balance(books.UNALLOCATED) == 0  # never a second unallocated receipt
    review = TillReceipt.objects.get(code=STK_CODE)
    assert review.settlement == rec.SettlementState.REVIEW and review.order == order
    assert "250.00" in review.settlement_note and "150.00" in review.settlement_note
    assert list(TillReceipt.objects.settlements_to_review()) == [review]
    assert AuditEvent.objects.filter(
        action="receipt.stk_settlement_review", object_id=str(review.pk)
    ).exists()
    assert unmatched_codes() == set()
    assert books.books_check() == []
    # The dashboard's suspense figure and the receipt's own column agree with the books: the
    # KES 100 the till got beyond the STK price is in STK clearing, not "unallocated".
    from console.selectors import unmatched_receipts
    from reconciliation.admin.receipts import TillReceiptAdmin

    assert unmatched_receipts()["unallocated"] == balance(books.UNALLOCATED) == 0
    assert not TillReceipt.objects.partly_used().exists()
    assert TillReceiptAdmin.display_unallocated(None, review) == "—"
    assert TillReceiptAdmin.display_age(None, review) == ("red", "STK settlement: review")


def test_receipt_recorded_before_its_stk_payment_is_moved_to_clearing_by_the_next_run(bundles):
    # The C2B confirmation came first (booked as unallocated); the STK success was confirmed after.
    till = receipt(code=STK_CODE, amount="150")
    order = stk_paid()
    counts = tasks.reconcile()
    assert counts["stk_settled"] == 1
    assert balance("stk_clearing_daraja") == 0 and balance(books.UNALLOCATED) == 0
    till.refresh_from_db()
    assert till.order == order and till.settlement == rec.SettlementState.SETTLED
    assert unmatched_codes() == set()
    assert books.books_check() == []
    assert tasks.reconcile().get("stk_settled") is None  # idempotent


def test_second_stk_payment_of_a_settled_order_settles_into_suspense_where_its_money_waits(bundles):
    order = stk_paid()
    import_statement(statement((STK_CODE, "11:30:00", "150.00")))
    # A second prompt on the same order was paid too: real money, held in Unallocated.
    second_stk_payment(order, "UCA7SEC0ND")
    import_statement(statement(("UCA7SEC0ND", "11:40:00", "150.00")))
    assert lines_for("UCA7SEC0ND") == [("mpesa_till", D("150.00")), ("stk_clearing_daraja", D("-150.00"))]
    assert balance("stk_clearing_daraja") == 0
    extra = TillReceipt.objects.get(code="UCA7SEC0ND")
    assert extra.settlement == rec.SettlementState.SETTLED and extra.order is None  # the order has its own
    assert unmatched_codes() == {"UCA7SEC0ND"}
    suspense_agrees_with_unallocated()
    assert books.books_check() == []


def test_a_code_only_a_prompt_knows_is_still_a_settlement_for_review(bundles):
    # The prompt's receipt came after its payment was booked without one: only StkRequest has it.
    stk = StkRequestFactory(order__bundle=Bundle.objects.get(slug="daily-2gb"), order__gateway="daraja")
    StkRequestFactory._meta.model.objects.filter(pk=stk.pk).update(status=StkStatus.SUCCESS, receipt=STK_CODE)
    payload_time = (timezone.now() - dt.timedelta(minutes=1)).astimezone(NAIROBI)
    got, _ = svc.receipt_record_one(
        svc.ReceiptDraft(code=STK_CODE, amount=D("150.00"), paid_at=payload_time, source=ReceiptSource.SMS)
    )
    got.refresh_from_db()
    assert got.settlement == rec.SettlementState.REVIEW and got.order_id == stk.order_id
    assert lines_for(STK_CODE) == [("mpesa_till", D("150.00")), ("stk_clearing_daraja", D("-150.00"))]
    assert balance(books.UNALLOCATED) == 0


# --- claims of an STK receipt -----------------------------------------------------------------
def test_claim_of_an_stk_receipt_already_on_the_till_is_answered_already_paid_by_stk(bundles):
    order = stk_paid()
    import_statement(statement((STK_CODE, "11:30:00", "150.00")))
    claim = ClaimFactory(code=STK_CODE, claimed_at=NOW)
    run = claims_reconcile(trigger="test", now=NOW)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.NEEDS_REVIEW and claim.reason == rec.ClaimReason.PAID_BY_STK
    assert order.reference in claim.explanation["summary"]
    assert claim.explanation["paid_by"] == {"order": order.reference, "order_id": order.pk, "channel": "stk"}
    assert claim.suggested_receipt.code == STK_CODE
    assert run.counts[rec.ClaimReason.PAID_BY_STK] == 1 and not run.error
    assert Order.objects.filter(mpesa_receipt=STK_CODE).count() == 1
    assert books.books_check() == []


def test_claim_of_an_stk_receipt_not_yet_on_the_till_is_answered_already_paid_by_stk(bundles):
    order = stk_paid()
    claim = ClaimFactory(code=STK_CODE, claimed_at=NOW)
    claims_reconcile(trigger="test", now=NOW)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.NEEDS_REVIEW and claim.reason == rec.ClaimReason.PAID_BY_STK
    assert claim.explanation["paid_by"]["order"] == order.reference


# --- one bad claim never stops a run ----------------------------------------------------------
def test_a_claim_whose_code_already_pays_an_order_goes_to_review_and_the_run_goes_on(bundles):
    # Left by older code: a till receipt in suspense whose code an order already holds.
    legacy = receipt(code="UCA3WQ6N7H", amount="150")
    OrderFactory(
        bundle=bundles["daily-2gb"],
        channel=Channel.TILL,
        gateway="",
        status=OrderStatus.CANCELLED,
        mpesa_receipt=legacy.code,
    )
    poisoned = ClaimFactory(code=legacy.code, claimed_at=NOW - dt.timedelta(minutes=2))
    good_receipt = receipt(amount="250")
    good = ClaimFactory(code=good_receipt.code, claimed_at=NOW - dt.timedelta(minutes=1))
    run = claims_reconcile(trigger="test", now=NOW)
    poisoned.refresh_from_db()
    good.refresh_from_db()
    assert not run.error and run.finished_at
    assert poisoned.status == ClaimStatus.NEEDS_REVIEW and poisoned.reason == ClaimReason.CODE_ALREADY_USED
    assert good.status == ClaimStatus.VERIFIED


def test_a_database_error_verifying_one_claim_sends_it_to_review_and_the_run_goes_on(bundles, monkeypatch):
    from reconciliation.services import decisions

    taken = OrderFactory(
        bundle=bundles["daily-2gb"],
        channel=Channel.TILL,
        gateway="",
        status=OrderStatus.CANCELLED,
        mpesa_receipt="X1",
    )
    bad_receipt = receipt(amount="150")
    bad = ClaimFactory(code=bad_receipt.code, claimed_at=NOW - dt.timedelta(minutes=2))
    good_receipt = receipt(amount="250")
    good = ClaimFactory(code=good_receipt.code, claimed_at=NOW - dt.timedelta(minutes=1))
    real_write = decisions._verify_write

    def write(rows, user):
        if any(row.claim.pk == bad.pk for row in rows):
            # A real constraint violation in the database, not a Python exception only: it fails
            # the set the bad claim is in, then the bad claim alone; the good one verifies alone.
            Order.objects.create(
                bundle=taken.bundle, price=D("150"), channel=Channel.TILL, mpesa_receipt="X1"
            )
        return real_write(rows, user)

    monkeypatch.setattr(decisions, "_verify_write", write)
    run = claims_reconcile(trigger="test", now=NOW)
    bad.refresh_from_db()
    good.refresh_from_db()
    assert not run.error and run.counts["verify_failed"] == 1
    assert bad.status == ClaimStatus.NEEDS_REVIEW and bad.reason == rec.ClaimReason.VERIFY_FAILED
    assert bad.explanation["summary"].startswith("Automatic verification failed")
    assert good.status == ClaimStatus.VERIFIED
    bad_receipt.refresh_from_db()
    assert bad_receipt.order_id is None  # nothing of the failed verification was kept
    assert books.books_check() == []


def test_the_original_issue_stk_receipt_imported_then_claimed_never_breaks_reconcile(bundles):
    order = stk_paid()
    import_statement(statement((STK_CODE, "11:30:00", "150.00"), (TILL_CODE, "08:01:12", "150.00")))
    ClaimFactory(code=STK_CODE, claimed_at=NOW)
    other = ClaimFactory(code=TILL_CODE, claimed_at=NOW)
    for _ in range(2):
        run = claims_reconcile(trigger="test", now=NOW)
        assert not run.error
    other.refresh_from_db()
    assert other.status == ClaimStatus.VERIFIED
    assert Order.objects.filter(mpesa_receipt=STK_CODE).get() == order
    assert order.stk_requests.get().status == StkStatus.SUCCESS
    assert books.books_check() == []
    suspense_agrees_with_unallocated()


# --- a settlement can never pay a claim by hand ------------------------------------------------
def test_an_agent_cannot_verify_a_claim_against_a_settlement_receipt(bundles, agent):
    from reconciliation.services import decisions
    from reconciliation.services.errors import ReceiptAlreadyUsed

    order = stk_paid()
    second_stk_payment(order, "UCA7SEC0ND")
    import_statement(statement((STK_CODE, "11:30:00", "150.00"), ("UCA7SEC0ND", "11:40:00", "150.00")))
    extra = TillReceipt.objects.get(code="UCA7SEC0ND")
    assert extra.order is None and extra.settlement == rec.SettlementState.SETTLED
    claim = ClaimFactory(code="UCA7SEC0ND", claimed_at=NOW)
    before = Order.objects.count()
    with pytest.raises(ReceiptAlreadyUsed, match="UCA7SEC0ND"):
        decisions.claim_verify(
            claim_id=claim.pk,
            receipt_code="UCA7SEC0ND",
            amount="150.00",
            user=agent,
            bundle_id=bundles["daily-2gb"].pk,
        )
    assert Order.objects.count() == before
    assert books.books_check() == []


def test_an_agent_cannot_verify_a_receipt_whose_code_another_order_holds(bundles, agent):
    from reconciliation.services import decisions
    from reconciliation.services.errors import ReceiptAlreadyUsed

    legacy = receipt(code="UCA3WQ6N7H", amount="150")
    OrderFactory(
        bundle=bundles["daily-2gb"],
        channel=Channel.TILL,
        gateway="",
        status=OrderStatus.CANCELLED,
        mpesa_receipt=legacy.code,
        reference="TB-HOLDER1",
    )
    claim = ClaimFactory(code=legacy.code, claimed_at=NOW)
    with pytest.raises(ReceiptAlreadyUsed, match="TB-HOLDER1"):
        decisions.claim_verify(
            claim_id=claim.pk,
            receipt_code=legacy.code,
            amount="150.00",
            user=agent,
            bundle_id=bundles["daily-2gb"].pk,
        )
    claim.refresh_from_db()
    assert claim.status != ClaimStatus.VERIFIED


def test_the_reply_and_claim_page_of_a_paid_by_stk_claim_point_at_the_order(bundles, agent, client_for):
    from django.urls import reverse

    from reconciliation.services.decisions import whatsapp_reply

    order = stk_paid()
    claim = ClaimFactory(code=STK_CODE, claimed_at=NOW)
    claims_reconcile(trigger="test", now=NOW)
    claim.refresh_from_db()
    reply = whatsapp_reply(claim)
    assert order.reference in reply and "already received" in reply
    assert "checking the payment" not in reply
    page = client_for(agent).get(reverse("admin:reconciliation_claim_change", args=[claim.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    link = reverse("admin:ledger_order_change", args=[order.pk])
    assert f'href="{link}" data-testid="paid-by"' in html


def test_close_day_counts_a_delivered_stk_order_settled_in_the_till_as_delivered(bundles, agent):
    from reconciliation.services.close import day_figures

    order = stk_paid()
    import_statement(statement((STK_CODE, "11:30:00", "150.00")))
    assert orders.order_mark_delivered(order=order, actor=agent)
    Order.objects.filter(pk=order.pk).update(delivered_at=NOW)
    figures = day_figures(day=NOW.date())
    assert (figures["paid_in"], figures["books_till_movement"], figures["delivered"]) == ("150.00",) * 3
    assert figures["balanced"], figures["differences"]
