"""The books service: one balanced entry per money event, refunds, adjustments, reversals."""

from decimal import Decimal

import pytest
from django.utils import timezone

from console.models import AuditEvent
from ledger import books, services
from ledger.models import EntryKind, JournalEntry, OrderStatus, Posting
from tests.ledger.factories import OrderFactory

pytestmark = pytest.mark.django_db

D = Decimal


def lines_of(entry) -> dict[str, Decimal]:
    return {p.account.key: p.amount for p in entry.postings.select_related("account")}


def stk_order(status=OrderStatus.PAID, gateway="payhero", price="150.00", **kw):
    order = OrderFactory(
        status=status, gateway=gateway, price=D(price), amount_paid=D(price), mpesa_receipt="SAE3YULR0Y", **kw
    )
    books.post_stk_payment(order=order, amount=order.price, receipt="SAE3YULR0Y", gateway=gateway)
    return order


def till_order(status=OrderStatus.PAID, price="150.00"):
    order = OrderFactory(
        channel="till",
        gateway="",
        status=status,
        price=D(price),
        amount_paid=D(price),
        mpesa_receipt="TK1ABC2DEF",
    )
    books.post_till_receipt(code="TK1ABC2DEF", amount=order.price, paid_at=None)
    books.post_claim_verified(order=order, amount=order.price, receipt="TK1ABC2DEF")
    return order


# --- posting rules ----------------------------------------------------------------------------
def test_stk_payment_debits_the_gateway_clearing_account_and_credits_bundles_owed():
    order = OrderFactory(status=OrderStatus.PAID, gateway="daraja")
    entry = books.post_stk_payment(order=order, amount=D("150.00"), receipt="SAE3YULR0Y", gateway="daraja")
    assert entry.kind == EntryKind.STK_PAYMENT
    assert lines_of(entry) == {"stk_clearing_daraja": D("150.00"), "bundles_owed": D("-150.00")}
    assert entry.order == order and entry.receipt_code == "SAE3YULR0Y" and entry.channel == "stk"


def test_replayed_stk_payment_returns_the_same_entry_and_posts_nothing_more():
    order = OrderFactory(status=OrderStatus.PAID)
    first = books.post_stk_payment(order=order, amount=D("150"), receipt="R1", gateway="simulator")
    again = books.post_stk_payment(order=order, amount=D("150"), receipt="R1", gateway="simulator")
    assert again.pk == first.pk
    assert Posting.objects.count() == 2


def test_till_receipt_then_claim_moves_money_from_unallocated_to_bundles_owed():
    order = till_order()
    receipt = JournalEntry.objects.get(kind=EntryKind.TILL_RECEIPT)
    claim = JournalEntry.objects.get(kind=EntryKind.CLAIM_VERIFIED)
    assert lines_of(receipt) == {"mpesa_till": D("150.00"), "unallocated_receipts": D("-150.00")}
    assert lines_of(claim) == {"unallocated_receipts": D("150.00"), "bundles_owed": D("-150.00")}
    assert claim.order == order


def test_delivery_moves_bundles_owed_to_sales_at_the_paid_amount():
    order = stk_order(price="99.00")
    entry = books.post_delivery(order=order)
    assert lines_of(entry) == {"bundles_owed": D("99.00"), "bundle_sales": D("-99.00")}


def test_entry_numbers_are_gapless_and_in_order():
    stk_order()
    till_order()
    numbers = list(JournalEntry.objects.order_by("seq").values_list("number", flat=True))
    assert numbers == ["JE-000001", "JE-000002", "JE-000003"]


def test_an_unbalanced_entry_is_refused_and_nothing_is_written():
    with pytest.raises(books.UnbalancedEntry):
        books.entry_post(
            kind=EntryKind.ADJUSTMENT, lines=[("mpesa_till", D("10")), ("bundle_sales", D("-9"))]
        )
    assert not JournalEntry.objects.exists()


# --- refunds ----------------------------------------------------------------------------------
def test_refund_of_paid_undelivered_stk_order_debits_bundles_owed_and_credits_its_gateway(finance):
    order = stk_order(gateway="payhero")
    entry = services.order_refund(order=order, reason="Customer paid twice", user=finance)
    assert entry.kind == EntryKind.REFUND
    assert lines_of(entry) == {"bundles_owed": D("150.00"), "stk_clearing_payhero": D("-150.00")}
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert entry.reason == "Customer paid twice" and entry.created_by == finance


def test_refund_of_delivered_order_debits_sales_refunds(finance):
    order = stk_order(gateway="daraja")
    books.post_delivery(order=order)
    order.status = OrderStatus.DELIVERED
    order.save()
    entry = services.order_refund(order=order, reason="Bundle never arrived", user=finance)
    assert lines_of(entry) == {"sales_refunds": D("150.00"), "stk_clearing_daraja": D("-150.00")}


def test_refund_of_till_order_credits_the_till(finance):
    order = till_order()
    entry = services.order_refund(order=order, reason="Wrong number", user=finance)
    assert lines_of(entry) == {"bundles_owed": D("150.00"), "mpesa_till": D("-150.00")}


def test_refund_is_audited_in_the_same_transaction(finance):
    order = stk_order()
    services.order_refund(order=order, reason="Duplicate", user=finance)
    event = AuditEvent.objects.get(action="order.refund")
    assert event.actor == finance and event.reason == "Duplicate"
    assert event.before == {"status": "paid"} and event.after["status"] == "refunded"


def test_refund_needs_a_reason(finance):
    order = stk_order()
    with pytest.raises(books.ReasonRequired):
        services.order_refund(order=order, reason="  ", user=finance)
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert not JournalEntry.objects.filter(kind=EntryKind.REFUND).exists()


def test_unpaid_order_cannot_be_refunded(finance):
    order = OrderFactory(status=OrderStatus.PENDING_PAYMENT)
    with pytest.raises(books.OrderNotRefundable):
        services.order_refund(order=order, reason="x", user=finance)


def test_order_is_refunded_only_once(finance):
    order = stk_order()
    services.order_refund(order=order, reason="once", user=finance)
    with pytest.raises(books.OrderAlreadyRefunded):
        services.order_refund(order=order, reason="twice", user=finance)
    assert JournalEntry.objects.filter(kind=EntryKind.REFUND).count() == 1


# --- adjustments ------------------------------------------------------------------------------
def test_adjustment_posts_any_balanced_lines_with_its_reason(finance):
    entry = books.adjustment_post(
        lines=[("mpesa_till", D("20.00")), ("unallocated_receipts", D("-20.00"))],
        reason="Statement shows a receipt the callback missed",
        user=finance,
    )
    assert entry.kind == EntryKind.ADJUSTMENT
    assert lines_of(entry) == {"mpesa_till": D("20.00"), "unallocated_receipts": D("-20.00")}
    assert AuditEvent.objects.filter(action="journal.adjustment", object_id=str(entry.pk)).exists()


@pytest.mark.parametrize(
    ("lines", "reason", "error"),
    [
        ([("mpesa_till", D("20")), ("bundle_sales", D("-19"))], "typo", books.UnbalancedEntry),
        ([("mpesa_till", D("20")), ("bundle_sales", D("-20"))], "", books.ReasonRequired),
        ([("mpesa_till", D("20"))], "one line", books.InvalidEntry),
        ([("mpesa_till", D("20")), ("no_such_account", D("-20"))], "bad key", books.InvalidEntry),
        ([("mpesa_till", D("20.001")), ("bundle_sales", D("-20.001"))], "cents", books.InvalidEntry),
    ],
)
def test_bad_adjustments_are_refused_whole(finance, lines, reason, error):
    with pytest.raises(error):
        books.adjustment_post(lines=lines, reason=reason, user=finance)
    assert not JournalEntry.objects.exists()
    assert not AuditEvent.objects.filter(action="journal.adjustment").exists()


# --- reversals --------------------------------------------------------------------------------
def test_reversal_posts_the_mirror_entry_linked_to_the_original(finance):
    order = till_order()
    claim = JournalEntry.objects.get(kind=EntryKind.CLAIM_VERIFIED)
    reversal = services.entry_reverse(entry=claim, reason="Verified the wrong claim", user=finance)
    assert reversal.kind == EntryKind.REVERSAL
    assert reversal.reverses == claim
    assert lines_of(reversal) == {k: -v for k, v in lines_of(claim).items()}
    assert reversal.order == order and reversal.receipt_code == claim.receipt_code
    claim.refresh_from_db()
    assert claim.reversed_by == reversal
    assert AuditEvent.objects.filter(action="journal.reverse", object_id=str(claim.pk)).count() == 1


def test_reversing_twice_returns_the_first_reversal(finance):
    order = stk_order()
    entry = order.journal_entries.get()
    first = services.entry_reverse(entry=entry, reason="mistake", user=finance)
    second = services.entry_reverse(entry=entry, reason="mistake again", user=finance)
    assert second.pk == first.pk
    assert JournalEntry.objects.filter(kind=EntryKind.REVERSAL).count() == 1


def test_a_reversal_is_not_itself_reversed(finance):
    entry = stk_order().journal_entries.get()
    reversal = services.entry_reverse(entry=entry, reason="mistake", user=finance)
    with pytest.raises(books.EntryNotReversible):
        services.entry_reverse(entry=reversal, reason="undo the undo", user=finance)


def test_reversal_needs_a_reason(finance):
    entry = stk_order().journal_entries.get()
    with pytest.raises(books.ReasonRequired):
        services.entry_reverse(entry=entry, reason="", user=finance)
    assert not JournalEntry.objects.filter(kind=EntryKind.REVERSAL).exists()


# --- immutability through the ORM -------------------------------------------------------------
def test_a_posted_entry_cannot_be_saved_again_or_deleted():
    entry = stk_order().journal_entries.get()
    entry.memo = "changed"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    assert JournalEntry.objects.get(pk=entry.pk).memo != "changed"


def test_postings_cannot_be_changed_or_deleted_one_by_one():
    posting = stk_order().journal_entries.get().postings.first()
    posting.amount = D("1.00")
    with pytest.raises(PermissionError):
        posting.save()
    with pytest.raises(PermissionError):
        posting.delete()


@pytest.mark.parametrize("model", [JournalEntry, Posting])
def test_querysets_refuse_update_delete_and_bulk_update(model):
    stk_order()
    qs = model.objects.all()
    with pytest.raises(PermissionError):
        qs.update(pk=0)
    with pytest.raises(PermissionError):
        qs.delete()
    with pytest.raises(PermissionError):
        qs.bulk_update(list(qs), ["pk"])
    assert model.objects.count() > 0


def test_only_the_books_service_writes_entries_and_postings():
    """Money moves only through ledger/books/posting.py: no other app module creates entries or postings."""
    import re
    from pathlib import Path

    writer = re.compile(
        r"(?<!class )\bPosting\(|Posting\.objects\.(bulk_)?create|JournalEntry\.objects\.create"
    )
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for path in root.glob("*/**/*.py"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(("tests/", ".")) or "/migrations/" in rel or rel == "ledger/books/posting.py":
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        offenders += [f"{rel}: {m.group(0)}" for m in writer.finditer(text)]
    assert offenders == []


# ---------------------------------------------------------------------------------------------
# Bulk till receipts (statement imports)
# ---------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_bulk_till_receipts_post_balanced_gapless_entries_once():
    from django.db.models import Sum

    from ledger import books
    from ledger.models import JournalEntry, Posting

    paid_at = timezone.now()
    books.post_till_receipt(code="TCG3YADR1X", amount=Decimal("150.00"), paid_at=paid_at)
    batch = [
        ("TCG3YADR1X", Decimal("150.00"), paid_at),  # already booked: skipped
        ("TCG3YADR2X", Decimal("250.00"), paid_at),
        ("TCG3YADR3X", Decimal("750.00"), paid_at),
    ]
    assert books.post_till_receipts_bulk(batch) == 2
    assert books.post_till_receipts_bulk(batch) == 0  # replay posts nothing
    numbers = list(JournalEntry.objects.order_by("seq").values_list("number", flat=True))
    assert numbers == ["JE-000001", "JE-000002", "JE-000003"]
    till = Posting.objects.filter(account__key="mpesa_till").aggregate(s=Sum("amount"))["s"]
    unallocated = Posting.objects.filter(account__key="unallocated_receipts").aggregate(s=Sum("amount"))["s"]
    assert till == Decimal("1150.00") and unallocated == Decimal("-1150.00")
    assert books.books_check() == []


@pytest.mark.django_db
def test_bulk_till_receipts_refuse_a_bad_amount_and_post_nothing():
    from ledger import books
    from ledger.models import JournalEntry

    with pytest.raises(books.InvalidEntry):
        books.post_till_receipts_bulk(
            [
                ("TCG3YADR2X", Decimal("250.00"), timezone.now()),
                ("TCG3YADR3X", Decimal("0.001"), timezone.now()),
            ]
        )
    assert not JournalEntry.objects.exists()
