"""The invariants of the books: what `manage.py check_books`, the dashboard and close-day check."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, Sum

from ledger.books.posting import BUNDLES_OWED, PAYMENT_KINDS
from ledger.models import EntryKind, JournalEntry, Order, OrderStatus, Posting


def books_check() -> list[str]:
    """Every invariant of the books that does not hold, one line per offending row ([] = healthy).

    Checks: total debits equal total credits; every entry has postings that sum to zero; every
    paid, delivered or refunded order has exactly one payment entry net of reversals; every
    delivered order has exactly one delivery entry net of reversals. Read-only.
    """

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
