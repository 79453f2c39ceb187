"""The books service: the only code that writes journal entries and postings.

Every money event is one balanced entry. Entries are numbered without gaps (JE-000001…),
never changed, and corrected only by a reversing entry. Posting is idempotent by key: replaying
the same event returns the entry it already made.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from console.exceptions import DomainError
from ledger.models import Account, EntryCounter, EntryKind, JournalEntry, Order, Posting

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

    seq, number = _next_number()
    # A concurrent post of the same key fails here on the unique key and rolls back whole.
    entry = JournalEntry.objects.create(
        seq=seq,
        number=number,
        kind=kind,
        posted_at=posted_at or timezone.now(),
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


def post_till_receipt(*, code: str, amount: Decimal, paid_at, memo: str = "") -> JournalEntry:
    """Till receipt recorded: Dr M-Pesa till / Cr Unallocated receipts."""
    return entry_post(
        kind=EntryKind.TILL_RECEIPT,
        lines=[(MPESA_TILL, amount), (UNALLOCATED, -amount)],
        memo=memo or f"Till receipt {code}",
        receipt_code=code,
        channel="till",
        posted_at=paid_at,
        idempotency_key=f"till_receipt:{code}",
    )


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
