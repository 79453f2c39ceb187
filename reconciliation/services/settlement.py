"""Till receipts that are STK payments reaching the till: settlements, not new money.

Buy Goods STK money lands in the till, so a statement row, C2B confirmation or pasted SMS can
carry the code of an STK payment already on the books (an STK order's mpesa_receipt, the receipt
code of an STK payment entry, or an StkRequest.receipt). Such a receipt is the settlement of
that payment:
- it books Dr M-Pesa till / Cr STK clearing (the gateway's), keyed like any till receipt, so
  one code is booked into the till once, whichever way it arrives;
- it is recorded as a TillReceipt (one code, one receipt) marked as a settlement and linked to
  the STK order when that order has no till receipt yet, so it is not in suspense and can never
  pay a claim (a second STK payment of an order already settled stays unlinked: its money waits
  in Unallocated receipts, where post_stk_extra_payment put it, and suspense shows it);
- when the till amount is not the STK amount it goes to review (SettlementState.REVIEW, a note,
  an audit row). Both sides of its entry are the till amount, so STK clearing keeps the
  difference: positive when the gateway confirmed money the till never showed, negative when
  the till got more. Unallocated receipts is never touched, so suspense still equals it.
A receipt recorded before its STK payment was confirmed (a C2B confirmation is quicker than the
gateway's status query) was booked as unallocated; stk_settlements_sweep, run by the matcher,
moves it to STK clearing (Dr Unallocated / Cr STK clearing) and marks it the same way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum

from console.kernel.audit import AuditAction, audit_record
from console.kernel.exceptions import DomainError
from ledger import books
from ledger.models import Channel, EntryKind, JournalEntry, Order, Posting, StkRequest, StkStatus
from reconciliation.models import SettlementState, TillReceipt

CHUNK = 1000
CENT = Decimal("0.01")
CLEARING_PREFIX = books.stk_clearing("")

SETTLED_NOTE = "Settles STK payment {reference} (KES {amount:,.2f})."
REVIEW_NOTE = (
    "The till shows KES {till:,.2f} but STK payment {reference} is KES {stk:,.2f}: STK clearing "
    "keeps KES {difference:,.2f}. Check the statement and the gateway, then adjust."
)
REVIEW_NOT_BOOKED_NOTE = (
    "The till shows KES {till:,.2f} for STK payment {reference}, which is not (or no longer) on "
    "the books: STK clearing keeps KES {difference:,.2f}. Check the order and the gateway, then adjust."
)


@dataclass(frozen=True)
class StkPayment:
    """An STK payment a till receipt code can settle."""

    code: str
    order_id: int
    reference: str
    gateway: str
    # What the live STK payment entries under the code put into STK clearing; None when none does.
    booked: Decimal | None


def _chunks(items: list, size: int = CHUNK):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def sent_before(paid_between: tuple[dt.datetime, dt.datetime]) -> tuple[dt.datetime, dt.datetime]:
    """When the prompts of payments made between these times were sent: a prompt's money moves
    within STK_EXPIRE_AFTER of its send (clock skew allowed both ways)."""
    skew = dt.timedelta(seconds=settings.CLOCK_SKEW_SECONDS)
    lifetime = dt.timedelta(seconds=settings.STK_EXPIRE_AFTER)
    return paid_between[0] - lifetime - skew, paid_between[1] + skew


def stk_payments(
    codes, *, sent_between: tuple[dt.datetime, dt.datetime] | None = None
) -> dict[str, StkPayment]:
    """The STK payments among ``codes``, by code. Read-only, a few indexed queries per 1,000 codes.

    A code is an STK payment when an STK order holds it as mpesa_receipt, a live STK payment
    entry carries it, or a successful StkRequest does. StkRequest.receipt has no index, so those
    are looked up only among prompts sent within ``sent_between`` (an indexed range), and not at
    all without it; the first two cover every payment whose receipt the books or the order know.
    """
    found: dict[str, StkPayment] = {}
    for chunk in _chunks(sorted(set(codes))):
        owners: dict[str, tuple[int, str, str]] = {}
        for code, pk, reference, gateway in Order.objects.filter(
            channel=Channel.STK, mpesa_receipt__in=chunk
        ).values_list("mpesa_receipt", "pk", "reference", "gateway"):
            owners[code] = (pk, reference, gateway)
        if sent_between:
            sent = StkRequest.objects.filter(
                status=StkStatus.SUCCESS,
                receipt__in=chunk,
                created_at__gte=sent_between[0],
                created_at__lte=sent_between[1],
            )
            for code, pk, reference, gateway in sent.values_list(
                "receipt", "order_id", "order__reference", "gateway"
            ):
                owners.setdefault(code, (pk, reference, gateway))
        booked: dict[str, tuple[Decimal, str, int, str]] = {}
        live = (
            Posting.objects.filter(
                entry__receipt_code__in=chunk,
                entry__kind=EntryKind.STK_PAYMENT,
                entry__reversed_by__isnull=True,
                account__key__startswith=CLEARING_PREFIX,
                amount__gt=0,
            )
            .values("entry__receipt_code", "account__key", "entry__order_id", "entry__order__reference")
            .annotate(total=Sum("amount"))
            .values_list(
                "entry__receipt_code", "account__key", "entry__order_id", "entry__order__reference", "total"
            )
            .order_by()
        )
        for code, key, order_id, reference, total in live:
            amount = Decimal(total).quantize(CENT) + (booked[code][0] if code in booked else 0)
            booked[code] = (amount, key, order_id, reference)
        for code in chunk:
            if code not in owners and code not in booked:
                continue
            amount, key, entry_order, entry_reference = booked.get(code, (None, "", None, ""))
            order_id, reference, gateway = owners.get(code, (entry_order, entry_reference, ""))
            # The clearing account the payment was booked into is the one its settlement clears.
            gateway = key.removeprefix(CLEARING_PREFIX) if key else gateway or settings.PAYMENT_GATEWAY
            found[code] = StkPayment(code, order_id, reference, gateway, amount)
    return found


def settlement_state(amount: Decimal, payment: StkPayment) -> tuple[str, str]:
    """(state, note) of a till receipt of ``amount`` that settles ``payment``."""
    if payment.booked == amount:
        return SettlementState.SETTLED, SETTLED_NOTE.format(reference=payment.reference, amount=amount)
    if payment.booked is None:
        note = REVIEW_NOT_BOOKED_NOTE.format(till=amount, reference=payment.reference, difference=-amount)
    else:
        note = REVIEW_NOTE.format(
            till=amount, reference=payment.reference, stk=payment.booked, difference=payment.booked - amount
        )
    return SettlementState.REVIEW, note[:255]


def settlements_prepare(receipts: list[TillReceipt]) -> dict[str, StkPayment]:
    """Mark the unsaved ``receipts`` whose code is an STK payment as its settlement (state and
    note set on the rows, before the insert). Returns those payments by code. Read-only."""
    if not receipts:
        return {}
    between = (min(r.paid_at for r in receipts), max(r.paid_at for r in receipts))
    payments = stk_payments([r.code for r in receipts], sent_between=sent_before(between))
    for receipt in receipts:
        payment = payments.get(receipt.code)
        if payment is not None:
            receipt.settlement, receipt.settlement_note = settlement_state(receipt.amount, payment)
    return payments


def settlements_book(receipts: list[TillReceipt], payments: dict[str, StkPayment]) -> None:
    """Book the inserted settlement ``receipts`` set-based (Dr M-Pesa till / Cr STK clearing), link
    each to its STK order when that order has no till receipt yet, and audit those for review.

    Runs inside the caller's transaction; idempotent by code (books) and by link (orders taken
    are skipped). Raises InvalidEntry (nothing of the batch is kept then).
    """
    if not receipts:
        return
    books.post_stk_settlements_bulk(
        [
            (r.code, r.amount, r.paid_at, p.gateway, p.order_id, p.reference)
            for r in receipts
            for p in [payments[r.code]]
        ]
    )
    _link_orders(receipts, payments)
    for receipt in receipts:
        if receipt.settlement == SettlementState.REVIEW:
            after = {"order": payments[receipt.code].reference, "note": receipt.settlement_note}
            audit_record(
                actor=None, action=AuditAction.RECEIPT_STK_SETTLEMENT_REVIEW, obj=receipt, after=after
            )


def _link_orders(receipts: list[TillReceipt], payments: dict[str, StkPayment]) -> None:
    wanted: dict[int, TillReceipt] = {}
    for receipt in receipts:
        wanted.setdefault(payments[receipt.code].order_id, receipt)  # one receipt per order
    taken = set(TillReceipt.objects.filter(order_id__in=wanted).values_list("order_id", flat=True))
    links = [(order_id, r) for order_id, r in wanted.items() if order_id not in taken and r.order_id is None]
    for order_id, receipt in links:
        receipt.order_id = order_id
    try:
        with transaction.atomic():
            TillReceipt.objects.bulk_update([r for _, r in links], ["order"], batch_size=500)
    except IntegrityError:
        # A concurrent receipt linked one of these orders first: link the others one by one.
        for order_id, receipt in links:
            try:
                with transaction.atomic():
                    TillReceipt.objects.filter(pk=receipt.pk).update(order_id=order_id)
            except IntegrityError:
                receipt.order_id = None


def stk_settlements_sweep(
    *,
    codes: list[str] | None = None,
    since: dt.datetime | None = None,
    changed_since: dt.datetime | None = None,
) -> int:
    """Settle the unmatched receipts booked as unallocated whose code turned out to be an STK
    payment still on the books (the receipt came before the STK confirmation).

    Each: Dr Unallocated receipts / Cr STK clearing (books.post_stk_settlement_of_unallocated),
    marked like a settlement recorded directly and linked to the STK order when free. Only receipts
    recorded since ``since`` (None: all) and, given ``codes``, with those codes. Given
    ``changed_since`` (a scheduled run after a recent full one), only the receipts that may have
    become settleable since then: see _settleable_since. Each receipt in its own transaction
    (receipt row locked); idempotent. Returns how many were settled.
    """
    qs = TillReceipt.objects.unmatched().filter(settlement=SettlementState.NONE)
    if codes is not None:
        qs = qs.filter(code__in=codes)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    found = qs.order_by().values_list("code", flat=True)
    if changed_since is not None:
        found = _settleable_since(found, changed_since)
    settled = 0
    for chunk in _chunks(list(found)):
        for code, payment in stk_payments(chunk).items():
            if payment.booked is None:
                continue  # nothing was booked twice: e.g. the receipt itself paid the order
            try:
                settled += _settle_unallocated(code, payment)
            except DomainError:
                continue  # left as it is; the next full run (or a manual one) tries again
    return settled


def _settleable_since(codes, since: dt.datetime):
    """The ``codes`` (a values_list of receipts) that may have become settleable since ``since``.

    A receipt is settleable once a live STK payment entry carries its code (stk_payments' ``booked``):
    so either the receipt is new (created since), or such an entry was booked since (posted_at is
    the booking time: STK payment entries are never back-dated). The order is not the signal: a
    second payment of a paid order books an entry without touching the order. One query (a UNION
    of two indexed lookups), whatever the number of older receipts.
    """
    paid = (
        JournalEntry.objects.filter(kind=EntryKind.STK_PAYMENT, posted_at__gte=since)
        .exclude(receipt_code="")
        .values("receipt_code")
    )
    return codes.filter(created_at__gte=since).union(codes.filter(code__in=paid))


@transaction.atomic
def _settle_unallocated(code: str, payment: StkPayment) -> int:
    receipt = TillReceipt.objects.select_for_update().get(code=code)
    if receipt.order_id or receipt.settlement:
        return 0
    order = Order.objects.get(pk=payment.order_id)
    books.post_stk_settlement_of_unallocated(
        code=code, amount=receipt.amount, gateway=payment.gateway, order=order
    )
    receipt.settlement, receipt.settlement_note = settlement_state(receipt.amount, payment)
    receipt.save(update_fields=["settlement", "settlement_note"])
    _link_orders([receipt], {code: payment})
    action = (
        "receipt.stk_settlement_review"
        if receipt.settlement == SettlementState.REVIEW
        else "receipt.stk_settled"
    )
    after = {"order": payment.reference, "note": receipt.settlement_note}
    audit_record(actor=None, action=action, obj=receipt, after=after)
    return 1
