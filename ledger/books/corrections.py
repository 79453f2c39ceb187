"""Decisions people make on the books: refunds, adjustments and reversals.

Each is a new entry (the books never change one) with the reason kept next to it and in the audit
trail.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from console.kernel.audit import AuditAction, audit_record
from ledger.books.errors import (
    EntryNotReversible,
    InvalidEntry,
)
from ledger.books.errors import require_reason as _require_reason
from ledger.books.posting import (
    BUNDLES_OWED,
    MPESA_TILL,
    PAYMENT_KINDS,
    SALES_REFUNDS,
    entry_post,
    stk_clearing,
)
from ledger.models import EntryKind, JournalEntry, Order, OrderStatus

ORDER_NOT_REFUNDABLE = "Only paid or delivered orders can be refunded; this one is {status}."
ORDER_ALREADY_REFUNDED = "This order has already been refunded."
ADJUSTMENT_TOO_SHORT = "An adjustment needs at least two lines."
REVERSAL_OF_REVERSAL = "A reversal cannot itself be reversed; post the correct entry instead."
REFUND_SOURCE_UNKNOWN = "Cannot tell which account the money for {reference} came from."
PAYMENT_OF_DELIVERED_ORDER = (
    "{reference} was delivered, so its payment cannot be reversed: refund the order instead."
)
PAYMENT_OF_REFUNDED_ORDER = (
    "{reference} was refunded, so its payment stays on the books: the refund already corrects it."
)


def _refund_source_account(order: Order) -> str:
    """The account the customer's money went into: the gateway's clearing account or the till."""
    if order.channel == "till":
        return MPESA_TILL
    if order.channel == "stk" and order.gateway:
        return stk_clearing(order.gateway)
    raise InvalidEntry(REFUND_SOURCE_UNKNOWN.format(reference=order.reference))


@transaction.atomic
def post_refund(*, order: Order, reason: str, user) -> JournalEntry:
    """Post the refund of a paid or delivered order to the account its money came from.

    Paid, not delivered: Dr Bundles owed. Delivered: Dr Sales refunds. Credit: STK clearing of
    the order's gateway, or the M-Pesa till for till orders. Only the entry: the order's status
    is ledger.services.order_refund's, which locks the order and calls this. Idempotent by order.
    Atomic. Raises ReasonRequired, InvalidEntry; writes nothing then.
    """
    reason = _require_reason(reason)
    amount = order.amount_paid or order.price
    debit = SALES_REFUNDS if order.status == OrderStatus.DELIVERED else BUNDLES_OWED
    credit = _refund_source_account(order)
    return entry_post(
        kind=EntryKind.REFUND,
        lines=[(debit, amount), (credit, -amount)],
        memo=f"Refund {order.reference}",
        reason=reason,
        order=order,
        receipt_code=order.mpesa_receipt or "",
        channel=order.channel,
        created_by=user,
        idempotency_key=f"refund:{order.reference}",
    )


@transaction.atomic
def adjustment_post(*, lines: list[tuple[str, Decimal]], reason: str, user, memo: str = "") -> JournalEntry:
    """Post a finance adjustment: any accounts, signed amounts (+ debit, - credit), must balance.

    Atomic with its audit row. Raises ReasonRequired, InvalidEntry, UnbalancedEntry.
    """
    reason = _require_reason(reason)
    if len(lines) < 2:
        raise InvalidEntry(ADJUSTMENT_TOO_SHORT)
    entry = entry_post(
        kind=EntryKind.ADJUSTMENT,
        lines=lines,
        memo=memo or "Adjustment",
        reason=reason,
        created_by=user,
    )
    audit_record(
        actor=user,
        action=AuditAction.JOURNAL_ADJUSTMENT,
        obj=entry,
        after={"lines": [(k, str(a)) for k, a in lines]},
        reason=reason,
    )
    return entry


def pays_order(entry: JournalEntry) -> bool:
    """Is ``entry`` the payment of its order's bundle (an STK or claim payment crediting Bundles owed)?"""
    return bool(
        entry.order_id
        and entry.kind in PAYMENT_KINDS
        and entry.postings.filter(account__key=BUNDLES_OWED, amount__lt=0).exists()
    )


def payment_reversal_refusal(entry: JournalEntry, order: Order | None = None) -> str:
    """Why reversing ``entry`` is refused, or "" when it may be reversed: the payment of a delivered
    order is refunded instead, and a refunded order's payment stays (the refund corrects it)."""

    if not pays_order(entry):
        return ""
    order = order or entry.order
    if order.status == OrderStatus.DELIVERED:
        return PAYMENT_OF_DELIVERED_ORDER.format(reference=order.reference)
    if order.status == OrderStatus.REFUNDED:
        return PAYMENT_OF_REFUNDED_ORDER.format(reference=order.reference)
    return ""


@transaction.atomic
def post_reversal(*, entry: JournalEntry, reason: str, user=None) -> tuple[JournalEntry, bool]:
    """Post the mirror of `entry` (every posting with its sign flipped), linked by `reverses`;
    returns (the reversal, whether it was posted now).

    Only the entry: when it is an order's payment (see pays_order), ledger.services.entry_reverse
    calls this and then moves the order (the order service sits above the books). The payment of
    a delivered or refunded order is refused (refund it instead).
    Idempotent: an entry is reversed at most once; reversing it again returns the reversal
    already posted (and writes nothing). Atomic with its audit row. Raises ReasonRequired and
    EntryNotReversible (a reversal is not itself reversed; the payment of a delivered or refunded
    order is refused, and nothing is written).
    """
    reason = _require_reason(reason)
    # The order row first, then the entry: the order every writer of an order takes (no deadlock).
    order_id = JournalEntry.objects.filter(pk=entry.pk).values_list("order_id", flat=True).get()
    order = Order.objects.select_for_update().get(pk=order_id) if order_id else None
    # Lock the original so two people reversing it at once post one reversal between them.
    entry = JournalEntry.objects.select_for_update().get(pk=entry.pk)
    existing = JournalEntry.objects.filter(reverses=entry).first()
    if existing:
        return existing, False
    if entry.kind == EntryKind.REVERSAL:
        raise EntryNotReversible(REVERSAL_OF_REVERSAL)
    refusal = payment_reversal_refusal(entry, order)
    if refusal:
        raise EntryNotReversible(refusal)
    lines = [(p.account.key, -p.amount) for p in entry.postings.select_related("account")]
    reversal = entry_post(
        kind=EntryKind.REVERSAL,
        lines=lines,
        memo=f"Reversal of {entry.number}",
        reason=reason,
        order=entry.order,
        receipt_code=entry.receipt_code,
        channel=entry.channel,
        created_by=user,
        reverses=entry,
        idempotency_key=f"reversal:{entry.number}",
    )
    audit_record(
        actor=user,
        action=AuditAction.JOURNAL_REVERSE,
        obj=entry,
        after={"reversed_by": reversal.number},
        reason=reason,
    )
    return reversal, True
