"""The books service: the only code that writes journal entries and postings.

Every money event is one balanced entry. Entries are numbered without gaps (JE-000001…),
never changed, and corrected only by a reversing entry. Posting is idempotent by key: replaying
the same event returns the entry it already made.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.utils import timezone

from console.kernel.audit import audit_record
from console.kernel.exceptions import DomainError
from ledger.models import Account, BooksClosedDay, EntryCounter, EntryKind, JournalEntry, Order, Posting

CENT = Decimal("0.01")

# Account keys (created by migration ledger.0002).
MPESA_TILL = "mpesa_till"
UNALLOCATED = "unallocated_receipts"
BUNDLES_OWED = "bundles_owed"
BUNDLE_SALES = "bundle_sales"
SALES_REFUNDS = "sales_refunds"


def stk_clearing(gateway: str) -> str:
    return f"stk_clearing_{gateway}"


class UnbalancedEntry(DomainError):
    """The postings of an entry must sum to zero."""


class InvalidEntry(DomainError):
    """This entry cannot be posted."""


class DayNotClosed(DomainError):
    """That day's books are not closed."""


# ---------------------------------------------------------------------------------------------
# Closed days: an entry whose money moved on a closed day is booked on the next open day
# ---------------------------------------------------------------------------------------------
NAIROBI = ZoneInfo("Africa/Nairobi")
DAY_NOT_CLOSED = "The books for {day} are not closed."


def nairobi_day(when: dt.datetime) -> dt.date:
    try:
        return when.astimezone(NAIROBI).date()
    except OverflowError:  # 9999-12-31 late in the day has no Nairobi date: it is no closed day
        return when.date()


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=NAIROBI)


def closed_days(since: dt.date) -> set[dt.date]:
    return set(BooksClosedDay.objects.filter(day__gte=since).values_list("day", flat=True))


def booking_time(value_at: dt.datetime, closed: set[dt.date] | None = None) -> dt.datetime:
    """When an entry whose money moved at ``value_at`` is booked: then, unless that Nairobi day is
    closed, in which case at the start of the first open day after it (a closed day's figures
    never change; the entry is listed on it as "after close")."""
    day = nairobi_day(value_at)
    closed = closed_days(day) if closed is None else closed
    if day not in closed:
        return value_at
    while day in closed:
        day += dt.timedelta(days=1)
    return day_start(day)  # closed days lie before today, so the next open day is a real date


@transaction.atomic
def books_day_close(*, day: dt.date, user=None) -> BooksClosedDay:
    """Close ``day``'s books (idempotent): later entries for it are booked on the next open day."""
    try:
        with transaction.atomic():
            closed, created = BooksClosedDay.objects.get_or_create(
                day=day, defaults={"closed_by": user if getattr(user, "pk", None) else None}
            )
    except IntegrityError:  # a concurrent close of the same day won
        closed, created = BooksClosedDay.objects.get(day=day), False
    if created:
        audit_record(actor=user, action="books.day_closed", obj=closed, after={"day": day.isoformat()})
    return closed


@transaction.atomic
def books_day_reopen(*, day: dt.date, user, reason: str) -> None:
    """Reopen ``day``'s books with a reason (audited). Raises DayNotClosed."""
    reason = _require_reason(reason)
    closed = BooksClosedDay.objects.select_for_update().filter(day=day).first()
    if closed is None:
        raise DayNotClosed(DAY_NOT_CLOSED.format(day=day.isoformat()))
    after = {"day": day.isoformat()}
    audit_record(actor=user, action="books.day_reopened", obj=closed, after=after, reason=reason)
    closed.delete()


def _accounts(keys: Iterable[str]) -> dict[str, Account]:
    keys = set(keys)
    found = {a.key: a for a in Account.objects.filter(key__in=keys)}
    missing = keys - found.keys()
    if missing:
        raise InvalidEntry(f"Unknown account(s): {', '.join(sorted(missing))}.")
    return found


def _next_number() -> tuple[int, str]:
    # The counter row is locked until commit: numbers are gapless and never repeat.
    counter = EntryCounter.objects.select_for_update().get_or_create(name="journal")[0]
    counter.last += 1
    counter.save(update_fields=["last"])
    return counter.last, f"JE-{counter.last:06d}"


@transaction.atomic
def entry_post(
    *,
    kind: str,
    lines: list[tuple[str, Decimal]],
    memo: str = "",
    reason: str = "",
    order: Order | None = None,
    receipt_code: str = "",
    channel: str = "",
    idempotency_key: str | None = None,
    created_by=None,
    posted_at=None,
    reverses: JournalEntry | None = None,
) -> JournalEntry:
    """Post one balanced entry. `lines` are (account key, signed amount): + debit, - credit.

    ``posted_at`` is when the money moved (default now): it is kept as the entry's value date,
    and the entry is booked then, or on the next open day when that day is closed.
    Atomic. Idempotent by `idempotency_key`: the entry already posted under the key is returned
    unchanged. Raises UnbalancedEntry or InvalidEntry and writes nothing on bad input.
    """
    if idempotency_key:
        existing = JournalEntry.objects.filter(idempotency_key=idempotency_key).first()
        if existing:
            return existing
    if kind not in EntryKind.values:
        raise InvalidEntry(f"Unknown entry kind {kind!r}.")
    if len(lines) < 2:
        raise InvalidEntry("An entry needs at least two postings.")
    amounts = []
    for key, amount in lines:
        amount = Decimal(amount)
        if amount != amount.quantize(CENT):
            raise InvalidEntry(f"{amount} has more than two decimal places.")
        if amount == 0:
            raise InvalidEntry("A posting of zero means nothing; leave it out.")
        amounts.append((key, amount))
    total = sum((a for _, a in amounts), Decimal("0"))
    if total != 0:
        raise UnbalancedEntry(f"Debits and credits differ by {total}.")
    accounts = _accounts(k for k, _ in amounts)

    value_at = posted_at or timezone.now()
    seq, number = _next_number()
    # A concurrent post of the same key fails here on the unique key and rolls back whole.
    entry = JournalEntry.objects.create(
        seq=seq,
        number=number,
        kind=kind,
        posted_at=booking_time(value_at),
        value_at=value_at,
        memo=memo[:255],
        reason=reason,
        created_by=created_by,
        order=order,
        receipt_code=receipt_code,
        channel=channel,
        idempotency_key=idempotency_key,
        reverses=reverses,
    )
    Posting.objects.bulk_create(
        [Posting(entry=entry, account=accounts[key], amount=amount) for key, amount in amounts]
    )
    return entry


# ---------------------------------------------------------------------------------------------
# The posting rules of design.md, one function per money event
# ---------------------------------------------------------------------------------------------
def post_stk_payment(*, order: Order, amount: Decimal, receipt: str, gateway: str) -> JournalEntry:
    """STK payment confirmed: Dr STK clearing (gateway) / Cr Bundles owed."""
    return entry_post(
        kind=EntryKind.STK_PAYMENT,
        lines=[(stk_clearing(gateway), amount), (BUNDLES_OWED, -amount)],
        memo=f"STK payment {order.reference}",
        order=order,
        receipt_code=receipt,
        channel="stk",
        idempotency_key=f"stk_payment:{order.reference}",
    )


def post_stk_unallocated(*, order: Order, amount: Decimal, receipt: str, gateway: str) -> JournalEntry:
    """STK money arrived but not for the order's price: Dr STK clearing / Cr Unallocated receipts.

    The money is real and must be on the books; a person decides what it pays for.
    """
    return entry_post(
        kind=EntryKind.STK_PAYMENT,
        lines=[(stk_clearing(gateway), amount), (UNALLOCATED, -amount)],
        memo=f"STK payment {order.reference} with unexpected amount",
        order=order,
        receipt_code=receipt,
        channel="stk",
        idempotency_key=f"stk_payment:{order.reference}",
    )


def post_stk_extra_payment(
    *, order: Order, amount: Decimal, receipt: str, gateway: str, stk_id: int
) -> JournalEntry:
    """A second STK payment for an order already paid: Dr STK clearing / Cr Unallocated receipts.

    Keyed by the STK request, so each prompt's money is booked once; finance refunds or reallocates it.
    """
    return entry_post(
        kind=EntryKind.STK_PAYMENT,
        lines=[(stk_clearing(gateway), amount), (UNALLOCATED, -amount)],
        memo=f"Second STK payment for {order.reference}",
        order=order,
        receipt_code=receipt,
        channel="stk",
        idempotency_key=f"stk_extra_payment:{stk_id}",
    )


def post_till_receipt(*, code: str, amount: Decimal, paid_at, memo: str = "") -> JournalEntry:
    """Till receipt recorded: Dr M-Pesa till / Cr Unallocated receipts (one receipt of the bulk rule)."""
    post_till_receipts_bulk([(code, amount, paid_at or timezone.now())])
    return JournalEntry.objects.get(idempotency_key=f"till_receipt:{code}")


@transaction.atomic
def post_till_receipts_bulk(receipts: list[tuple[str, Decimal, object]]) -> int:
    """Book many till receipts at once: Dr M-Pesa till / Cr Unallocated receipts for each.

    `receipts` are (code, amount, paid_at). The same entries post_till_receipt would make, with
    the same idempotency keys (codes already booked are skipped), but with one counter lock and
    two bulk inserts for the whole batch, so a 100k-row statement is not 100k round trips.
    Atomic: the whole batch posts or none of it does. Returns the number of entries posted.
    """
    rows = []
    for code, amount, paid_at in receipts:
        amount = Decimal(amount)
        if amount <= 0 or amount != amount.quantize(CENT):
            raise InvalidEntry(RECEIPT_AMOUNT_INVALID.format(code=code, amount=amount))
        lines = [(MPESA_TILL, amount), (UNALLOCATED, -amount)]
        rows.append(
            (
                f"till_receipt:{code}",
                EntryKind.TILL_RECEIPT,
                code,
                paid_at,
                f"Till receipt {code}",
                "till",
                None,
                lines,
            )
        )
    return _post_bulk(list({r[0]: r for r in rows}.values()))


def post_claim_verified(*, order: Order, amount: Decimal, receipt: str, created_by=None) -> JournalEntry:
    """Claim verified, order paid: Dr Unallocated receipts / Cr Bundles owed."""
    return entry_post(
        kind=EntryKind.CLAIM_VERIFIED,
        lines=[(UNALLOCATED, amount), (BUNDLES_OWED, -amount)],
        memo=f"Till claim {receipt} paid {order.reference}",
        order=order,
        receipt_code=receipt,
        channel="till",
        created_by=created_by,
        idempotency_key=f"claim_verified:{order.reference}",
    )


def post_delivery(*, order: Order, created_by=None) -> JournalEntry:
    """Order delivered: Dr Bundles owed / Cr Bundle sales, at the order's paid amount."""
    amount = order.amount_paid or order.price
    return entry_post(
        kind=EntryKind.DELIVERY,
        lines=[(BUNDLES_OWED, amount), (BUNDLE_SALES, -amount)],
        memo=f"Delivered {order.reference}",
        order=order,
        receipt_code=order.mpesa_receipt or "",
        channel=order.channel,
        created_by=created_by,
        idempotency_key=f"delivery:{order.reference}",
    )


BULK_ENTRY_INVALID = "Entry {key}: its postings are not a balanced entry in cents without zeros."
RECEIPT_AMOUNT_INVALID = "Receipt {code}: {amount} is not a positive amount in cents."


def _post_bulk(
    rows: list[tuple[str, str, str, object, str, str, int | None, list[tuple[str, Decimal]]]],
) -> int:
    """Post many balanced entries with one counter lock and two bulk inserts.

    `rows` are (idempotency key, kind, receipt code, value date, memo, channel, order id, lines).
    Keys already posted are skipped. Atomic (call inside a transaction). Returns entries posted.
    """
    done = set(
        JournalEntry.objects.filter(idempotency_key__in=[r[0] for r in rows]).values_list(
            "idempotency_key", flat=True
        )
    )
    todo = [r for r in rows if r[0] not in done]
    if not todo:
        return 0
    for key, *_, lines in todo:
        if any(a == 0 or a != a.quantize(CENT) for _, a in lines) or sum(a for _, a in lines) != 0:
            raise InvalidEntry(BULK_ENTRY_INVALID.format(key=key))
    accounts = _accounts(key for *_, lines in todo for key, _ in lines)
    closed = closed_days(min(nairobi_day(r[3]) for r in todo))
    counter = EntryCounter.objects.select_for_update().get_or_create(name="journal")[0]
    first = counter.last + 1
    counter.last += len(todo)
    counter.save(update_fields=["last"])
    entries = JournalEntry.objects.bulk_create(
        [
            JournalEntry(
                seq=first + i,
                number=f"JE-{first + i:06d}",
                kind=kind,
                posted_at=booking_time(value_at, closed),
                value_at=value_at,
                memo=memo[:255],
                receipt_code=code,
                channel=channel,
                order_id=order_id,
                idempotency_key=key,
            )
            for i, (key, kind, code, value_at, memo, channel, order_id, _) in enumerate(todo)
        ]
    )
    if any(e.pk is None for e in entries):  # a database that cannot return ids from bulk inserts
        ids = dict(
            JournalEntry.objects.filter(idempotency_key__in=[r[0] for r in todo]).values_list(
                "idempotency_key", "id"
            )
        )
        for e in entries:
            e.pk = ids[e.idempotency_key]
    postings = [
        Posting(entry_id=entry.pk, account=accounts[key], amount=amount)
        for entry, (*_, lines) in zip(entries, todo, strict=True)
        for key, amount in lines
    ]
    Posting.objects.bulk_create(postings, batch_size=2000)
    return len(todo)


@transaction.atomic
def post_stk_settlements_bulk(settlements: list[tuple[str, Decimal, object, str, int | None, str]]) -> int:
    """Till receipts that are STK payments reaching the till: Dr M-Pesa till / Cr STK clearing (gateway).

    `settlements` are (code, till amount, paid_at, gateway, STK order id, order reference). Keyed
    like a till receipt (``till_receipt:{code}``), so a code is booked into the till once whichever
    way it arrives; codes already booked are skipped. Both sides are the till amount: when it
    differs from the STK payment, STK clearing keeps the difference for a person to resolve, and
    Unallocated receipts is never touched. Atomic, set-based like post_till_receipts_bulk.
    Returns the number of entries posted. Raises InvalidEntry.
    """
    rows = []
    for code, amount, paid_at, gateway, order_id, reference in settlements:
        amount = Decimal(amount)
        if amount <= 0:
            raise InvalidEntry(RECEIPT_AMOUNT_INVALID.format(code=code, amount=amount))
        lines = [(MPESA_TILL, amount), (stk_clearing(gateway), -amount)]
        memo = f"Till receipt {code} settles STK payment {reference}"
        rows.append(
            (f"till_receipt:{code}", EntryKind.TILL_RECEIPT, code, paid_at, memo, "stk", order_id, lines)
        )
    return _post_bulk(rows)


def post_stk_settlement_of_unallocated(
    *, code: str, amount: Decimal, gateway: str, order: Order
) -> JournalEntry:
    """A till receipt booked as unallocated turned out to be an STK payment reaching the till (the
    receipt came before the STK confirmation): Dr Unallocated receipts / Cr STK clearing (gateway).

    With the receipt's own entry (Dr M-Pesa till / Cr Unallocated) this is the settlement
    post_stk_settlements_bulk books in one go. Idempotent by code. Atomic. Raises InvalidEntry.
    """
    return entry_post(
        kind=EntryKind.TILL_RECEIPT,
        lines=[(UNALLOCATED, amount), (stk_clearing(gateway), -amount)],
        memo=f"Till receipt {code} settles STK payment {order.reference}: out of Unallocated",
        order=order,
        receipt_code=code,
        channel="stk",
        idempotency_key=f"stk_settlement:{code}",
    )


# ---------------------------------------------------------------------------------------------
# Decisions people make on the books: refunds, adjustments, reversals
# ---------------------------------------------------------------------------------------------
REASON_REQUIRED = "Give a reason: the books keep it next to the entry."
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


class ReasonRequired(DomainError):
    """Give a reason: the books keep it next to the entry."""


class OrderNotRefundable(DomainError):
    """Only paid or delivered orders can be refunded."""


class OrderAlreadyRefunded(DomainError):
    """This order has already been refunded."""


class EntryNotReversible(DomainError):
    """This entry cannot be reversed."""


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired(REASON_REQUIRED)
    return reason


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
    from ledger.models import OrderStatus

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
    from console.kernel.audit import audit_record

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
        action="journal.adjustment",
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
    from ledger.models import OrderStatus

    if not pays_order(entry):
        return ""
    order = order or entry.order
    if order.status == OrderStatus.DELIVERED:
        return PAYMENT_OF_DELIVERED_ORDER.format(reference=order.reference)
    if order.status == OrderStatus.REFUNDED:
        return PAYMENT_OF_REFUNDED_ORDER.format(reference=order.reference)
    return ""


@transaction.atomic
def entry_reverse(*, entry: JournalEntry, reason: str, user=None, order_follows: bool = True) -> JournalEntry:
    """Post the mirror of `entry` (every posting with its sign flipped), linked by `reverses`.

    The payment of an order (see pays_order) is refused once the order is delivered (refund it)
    or refunded; otherwise the order follows in the same transaction through
    ledger.services.order_payment_reversed (needs review; a till order's claim and receipt are
    reopened), unless ``order_follows`` is False because the caller settles the order itself.
    Idempotent: an entry is reversed at most once; reversing it again returns the reversal
    already posted (and writes nothing). Atomic with its audit row. Raises ReasonRequired and
    EntryNotReversible (a reversal is not itself reversed; the payment of a delivered or refunded
    order is refused, and nothing is written).
    """
    from console.kernel.audit import audit_record

    reason = _require_reason(reason)
    # The order row first, then the entry: the order every writer of an order takes (no deadlock).
    order_id = JournalEntry.objects.filter(pk=entry.pk).values_list("order_id", flat=True).get()
    order = Order.objects.select_for_update().get(pk=order_id) if order_id else None
    # Lock the original so two people reversing it at once post one reversal between them.
    entry = JournalEntry.objects.select_for_update().get(pk=entry.pk)
    existing = JournalEntry.objects.filter(reverses=entry).first()
    if existing:
        return existing
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
        action="journal.reverse",
        obj=entry,
        after={"reversed_by": reversal.number},
        reason=reason,
    )
    if order_follows and pays_order(entry):
        from ledger.services import order_payment_reversed  # the order service sits above the books

        order_payment_reversed(order=order, entry=entry, reason=reason, user=user)
    return reversal


# ---------------------------------------------------------------------------------------------
# Invariants: what `manage.py check_books`, the dashboard and close-day check
# ---------------------------------------------------------------------------------------------
PAYMENT_KINDS = (EntryKind.STK_PAYMENT, EntryKind.CLAIM_VERIFIED)


def books_check() -> list[str]:
    """Every invariant of the books that does not hold, one line per offending row ([] = healthy).

    Checks: total debits equal total credits; every entry has postings that sum to zero; every
    paid, delivered or refunded order has exactly one payment entry net of reversals; every
    delivered order has exactly one delivery entry net of reversals. Read-only.
    """
    from django.db.models import Count, Exists, OuterRef, Q, Sum

    from ledger.models import OrderStatus

    problems: list[str] = []
    total = Posting.objects.aggregate(t=Sum("amount"))["t"] or Decimal("0")
    if total != 0:
        problems.append(f"Total debits and credits differ by {total}.")

    unbalanced = (
        Posting.objects.values("entry_id", "entry__number")
        .annotate(total=Sum("amount"))
        .exclude(total=0)
        .order_by("entry_id")
    )
    for row in unbalanced:
        problems.append(f"{row['entry__number']} is unbalanced by {row['total']}.")
    empty = JournalEntry.objects.filter(~Exists(Posting.objects.filter(entry=OuterRef("pk"))))
    for number in empty.values_list("number", flat=True):
        problems.append(f"{number} has no postings.")

    live = Q(journal_entries__reversed_by__isnull=True)
    orders = Order.objects.filter(channel__in=("stk", "till"))
    # The payment that pays for the bundle credits Bundles owed; a second STK payment for the same
    # order is real money too, but it waits in Unallocated receipts and is not the order's payment.
    pays_bundle = Q(
        journal_entries__kind__in=PAYMENT_KINDS, journal_entries__postings__account__key=BUNDLES_OWED
    )
    paid = orders.filter(status__in=(OrderStatus.PAID, OrderStatus.DELIVERED, OrderStatus.REFUNDED)).annotate(
        n=Count("journal_entries", filter=live & pays_bundle, distinct=True)
    )
    for reference, n in paid.exclude(n=1).values_list("reference", "n"):
        problems.append(f"{reference} has {n} payment entries (expected 1).")
    delivered = orders.filter(status=OrderStatus.DELIVERED).annotate(
        n=Count("journal_entries", filter=live & Q(journal_entries__kind=EntryKind.DELIVERY))
    )
    for reference, n in delivered.exclude(n=1).values_list("reference", "n"):
        problems.append(f"{reference} has {n} delivery entries (expected 1).")
    return problems
