"""The books service: the only code that writes journal entries and postings.

Every money event is one balanced entry. Entries are numbered without gaps (JE-000001…),
never changed, and corrected only by a reversing entry. Posting is idempotent by key: replaying
the same event returns the entry it already made.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from console.kernel.clock import nairobi_day
from console.kernel.money import CENT
from ledger.books.closing import booking_time, closed_days
from ledger.books.errors import InvalidEntry, UnbalancedEntry
from ledger.models import Account, EntryCounter, EntryKind, JournalEntry, Order, Posting

# Account keys (created by migration ledger.0002).
MPESA_TILL = "mpesa_till"
UNALLOCATED = "unallocated_receipts"
BUNDLES_OWED = "bundles_owed"
BUNDLE_SALES = "bundle_sales"
SALES_REFUNDS = "sales_refunds"


# The entries that pay for an order's bundle (what check_books counts).
PAYMENT_KINDS = (EntryKind.STK_PAYMENT, EntryKind.CLAIM_VERIFIED)


def stk_clearing(gateway: str) -> str:
    return f"stk_clearing_{gateway}"


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


# One statement writes the batch's entries and, from what it returns, their two postings each.
TILL_RECEIPTS_SQL = """
WITH src AS (
    SELECT * FROM unnest(%(codes)s::text[], %(amounts)s::numeric[], %(values)s::timestamptz[],
                         %(booked)s::timestamptz[])
        WITH ORDINALITY AS s(code, amount, value_at, posted_at, ord)
), entry AS (
    INSERT INTO ledger_journalentry (seq, number, kind, posted_at, value_at, memo, reason, created_by_id,
                                     order_id, receipt_code, channel, idempotency_key, reverses_id)
    SELECT seq, 'JE-' || lpad(seq::text, greatest(6, length(seq::text)), '0'), %(kind)s, posted_at,
           value_at, left('Till receipt ' || code, 255), '', NULL, NULL, code, 'till',
           'till_receipt:' || code, NULL
    FROM (SELECT %(first)s + ord - 1 AS seq, * FROM src) AS numbered ORDER BY seq
    RETURNING id, seq, receipt_code
)
INSERT INTO ledger_posting (entry_id, account_id, amount)
SELECT entry.id, line.account_id, line.sign * src.amount
FROM entry JOIN src ON src.code = entry.receipt_code
CROSS JOIN (VALUES (1, %(till)s, 1), (2, %(unallocated)s, -1)) AS line(n, account_id, sign)
ORDER BY entry.seq, line.n
"""


@transaction.atomic
def post_till_receipts_set_based(receipts: list[tuple[str, Decimal, object]]) -> int:
    """post_till_receipts_bulk for a large batch on PostgreSQL, without a model instance per row.

    The same entries (numbers in the given order, memos, value and booking dates, idempotency
    keys; codes already booked skipped) and postings, written by one counter UPDATE … RETURNING
    and one INSERT … SELECT over arrays. Other databases take post_till_receipts_bulk.
    Atomic. Returns the number of entries posted. Raises InvalidEntry.
    """
    if connection.vendor != "postgresql":
        return post_till_receipts_bulk(receipts)
    batch: dict[str, tuple[Decimal, object]] = {}
    for code, amount, paid_at in receipts:
        amount = Decimal(amount)
        if amount <= 0 or amount != amount.quantize(CENT):
            raise InvalidEntry(RECEIPT_AMOUNT_INVALID.format(code=code, amount=amount))
        batch[code] = (amount, paid_at)  # a repeated code: its first place, its last amount (as bulk)
    if not batch:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT k.code FROM unnest(%s::text[]) AS k(code) WHERE EXISTS "
            "(SELECT 1 FROM ledger_journalentry e WHERE e.idempotency_key = 'till_receipt:' || k.code)",
            [list(batch)],
        )
        for (code,) in cursor.fetchall():
            del batch[code]
        if not batch:
            return 0
        accounts = _accounts([MPESA_TILL, UNALLOCATED])
        values = [paid_at for _, paid_at in batch.values()]
        closed = closed_days(min(nairobi_day(v) for v in values))
        # The counter row stays locked until commit: the batch's numbers are gapless and its own.
        cursor.execute(
            "UPDATE ledger_entrycounter SET last = last + %s WHERE name = 'journal' RETURNING last",
            [len(batch)],
        )
        row = cursor.fetchone()
        if row is None:
            EntryCounter.objects.get_or_create(name="journal")
            return post_till_receipts_set_based(receipts)
        cursor.execute(
            TILL_RECEIPTS_SQL,
            {
                "codes": list(batch),
                "amounts": [amount for amount, _ in batch.values()],
                "values": values,
                "booked": [booking_time(v, closed) for v in values] if closed else values,
                "first": row[0] - len(batch) + 1,
                "kind": EntryKind.TILL_RECEIPT.value,
                "till": accounts[MPESA_TILL].pk,
                "unallocated": accounts[UNALLOCATED].pk,
            },
        )
    return len(batch)


def _claim_verified(order: Order, receipt: str) -> tuple[str, str]:
    return f"claim_verified:{order.reference}", f"Till claim {receipt} paid {order.reference}"


def post_claim_verified(*, order: Order, amount: Decimal, receipt: str, created_by=None) -> JournalEntry:
    """Claim verified, order paid: Dr Unallocated receipts / Cr Bundles owed."""
    key, memo = _claim_verified(order, receipt)
    return entry_post(
        kind=EntryKind.CLAIM_VERIFIED,
        lines=[(UNALLOCATED, amount), (BUNDLES_OWED, -amount)],
        memo=memo,
        order=order,
        receipt_code=receipt,
        channel="till",
        created_by=created_by,
        idempotency_key=key,
    )


@transaction.atomic
def post_claims_verified(verified: list[tuple[Order, Decimal, str]], created_by=None) -> int:
    """Claims verified together (a matcher batch): post_claim_verified's entry for each
    (order, amount, receipt code), numbered in that order, with one counter lock and two bulk
    inserts. Idempotent by the same keys. Returns the number of entries posted."""
    now = timezone.now()
    rows = []
    for order, amount, receipt in verified:
        key, memo = _claim_verified(order, receipt)
        lines = [(UNALLOCATED, Decimal(amount)), (BUNDLES_OWED, -Decimal(amount))]
        rows.append((key, EntryKind.CLAIM_VERIFIED, receipt, now, memo, "till", order.pk, lines))
    return _post_bulk(rows, created_by=created_by)


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
    created_by=None,
) -> int:
    """Post many balanced entries with one counter lock and two bulk inserts.

    `rows` are (idempotency key, kind, receipt code, value date, memo, channel, order id, lines).
    Keys already posted are skipped. Atomic (call inside a transaction). Returns entries posted.
    ``created_by`` (a person, or None for the system) made every one of them.
    """
    creator = created_by if getattr(created_by, "pk", None) else None
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
                created_by=creator,
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
