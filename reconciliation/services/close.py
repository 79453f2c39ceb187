"""The daily close: the till's money three ways for one Nairobi day, and finance's sign-off.

1. paid in: TillReceipt amounts paid that day (statement, C2B and pasted SMS sources);
2. books: the movement of the M-Pesa till account that day (entries posted at the payment time);
3. delivered: till-channel orders delivered that day, at the amount paid.
The day balances when all three agree. Each difference lists the rows behind it.

Closing a day also closes its books: money that turns up later for it (a pasted SMS, a late
statement row) is booked on the next open day, so the closed figures never change; it is listed
on the closed day as "after close". Finance can reopen a day with a reason and close it again.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from console.kernel.audit import AuditAction, audit_record
from console.kernel.clock import day_range
from console.kernel.money import CENT, ZERO
from ledger import books
from ledger.models import Channel, JournalEntry, Order, OrderStatus, Posting
from reconciliation.models import DayClose, TillReceipt

from .errors import (
    DAY_ALREADY_CLOSED,
    DAY_NOT_CLOSED,
    REOPEN_REASON_REQUIRED,
    DayAlreadyClosed,
    DayNotClosed,
)

ROW_LIMIT = 200  # rows listed per difference; the totals are always complete


def _cents(value) -> Decimal:
    return Decimal(value or 0).quantize(CENT)


def after_close_entries(day: dt.date):
    """Entries whose money moved on ``day`` but that were booked later, because it was closed."""
    start, end = day_range(day, day)
    return JournalEntry.objects.filter(
        value_at__gte=start, value_at__lt=end, posted_at__gte=end, posted_at__gt=F("value_at")
    ).order_by("seq")


def day_figures(*, day: dt.date) -> dict:
    """Totals and differences for ``day`` (read-only). Amounts are strings for JSON."""
    start, end = day_range(day, day)
    # Money of this day booked after it was closed: listed apart, so the closed figures stand.
    after_close = after_close_entries(day)
    late_codes = [c for c in after_close.values_list("receipt_code", flat=True) if c]
    receipts = TillReceipt.objects.filter(paid_at__gte=start, paid_at__lt=end).exclude(code__in=late_codes)
    paid_in = _cents(receipts.aggregate(s=Coalesce(Sum("amount"), ZERO))["s"])
    till_postings = Posting.objects.filter(
        account__key=books.MPESA_TILL, entry__posted_at__gte=start, entry__posted_at__lt=end
    )
    books_movement = _cents(till_postings.aggregate(s=Coalesce(Sum("amount"), ZERO))["s"])
    # Till orders, and STK orders whose payment reached the till (a settlement receipt): both are
    # paid-in money on the statement.
    delivered = Order.objects.filter(
        Q(channel=Channel.TILL) | Q(till_receipt__isnull=False),
        status=OrderStatus.DELIVERED,
        delivered_at__gte=start,
        delivered_at__lt=end,
    )
    delivered_sum = ZERO
    for amount_paid, price in delivered.values_list("amount_paid", "price").iterator():
        delivered_sum += amount_paid if amount_paid is not None else price

    delivered_sum = _cents(delivered_sum)
    differences = []
    if paid_in != books_movement:
        receipt_codes = set(receipts.values_list("code", flat=True))
        booked_codes = set(till_postings.values_list("entry__receipt_code", flat=True))
        differences.append(
            {
                "check": "paid_in_vs_books",
                "difference": str(paid_in - books_movement),
                "receipts_not_in_books": sorted(receipt_codes - booked_codes)[:ROW_LIMIT],
                "books_without_receipt": sorted(booked_codes - receipt_codes)[:ROW_LIMIT],
            }
        )
    if paid_in != delivered_sum:
        not_delivered = receipts.exclude(
            order__status=OrderStatus.DELIVERED, order__delivered_at__gte=start, order__delivered_at__lt=end
        )
        other_days = delivered.exclude(till_receipt__paid_at__gte=start, till_receipt__paid_at__lt=end)
        differences.append(
            {
                "check": "paid_in_vs_delivered",
                "difference": str(paid_in - delivered_sum),
                "receipts_not_delivered": [
                    {"code": c, "amount": str(a), "order": o or ""}
                    for c, a, o in not_delivered.values_list("code", "amount", "order__reference")[:ROW_LIMIT]
                ],
                "delivered_from_other_days": [
                    {"order": r, "receipt": m or "", "amount": str(a if a is not None else p)}
                    for r, m, a, p in other_days.values_list(
                        "reference", "mpesa_receipt", "amount_paid", "price"
                    )[:ROW_LIMIT]
                ],
            }
        )
    late = [
        {"entry": n, "kind": k, "receipt": r, "booked": timezone.localtime(p).isoformat(timespec="minutes")}
        for n, k, r, p in after_close.values_list("number", "kind", "receipt_code", "posted_at")[:ROW_LIMIT]
    ]
    return {
        "day": day.isoformat(),
        "after_close": late,
        "paid_in": str(paid_in),
        "receipts": receipts.count(),
        "books_till_movement": str(books_movement),
        "delivered": str(delivered_sum),
        "orders_delivered": delivered.count(),
        "balanced": not differences,
        "differences": differences,
    }


@transaction.atomic
def day_close(*, day: dt.date, user, note: str = "") -> DayClose:
    """Record finance's sign-off on ``day`` with the figures as they are now, and close its books.

    Atomic. Raises DayAlreadyClosed when the day already has a sign-off that was not reopened;
    a reopened day is closed again on the same record (the audit trail keeps every close).
    """
    locked = DayClose.objects.select_for_update(of=("self",))  # not the nullable closed_by join
    existing = locked.filter(day=day).select_related("closed_by").first()
    if existing and existing.reopened_at is None:
        who = existing.closed_by.get_username() if existing.closed_by_id else "system"
        raise DayAlreadyClosed(DAY_ALREADY_CLOSED.format(day=day.isoformat(), who=who))
    figures = day_figures(day=day)
    if note:
        figures["note"] = note
    closer = user if getattr(user, "pk", None) else None
    if existing:
        existing.closed_by, existing.closed_at, existing.figures = closer, timezone.now(), figures
        existing.balanced = figures["balanced"]
        existing.reopened_at, existing.reopened_by, existing.reopen_reason = None, None, ""
        existing.save()
        close = existing
    else:
        try:
            with transaction.atomic():
                close = DayClose.objects.create(
                    day=day, closed_by=closer, figures=figures, balanced=figures["balanced"]
                )
        except IntegrityError:
            raise DayAlreadyClosed(DAY_ALREADY_CLOSED.format(day=day.isoformat(), who="someone else"))
    books.books_day_close(day=day, user=user)
    audit_record(actor=user, action=AuditAction.DAY_CLOSED, obj=close, after=figures, reason=note)
    return close


@transaction.atomic
def day_reopen(*, day: dt.date, user, reason: str) -> DayClose:
    """Reopen a closed day with a reason (audited): its books accept entries again until it is
    closed again. Raises DayNotClosed, or ReconciliationError without a reason."""
    reason = (reason or "").strip()
    if not reason:
        raise DayNotClosed(REOPEN_REASON_REQUIRED)
    close = DayClose.objects.select_for_update().filter(day=day).first()
    if close is None or close.reopened_at is not None:
        raise DayNotClosed(DAY_NOT_CLOSED.format(day=day.isoformat()))
    close.reopened_at = timezone.now()
    close.reopened_by = user if getattr(user, "pk", None) else None
    close.reopen_reason = reason
    close.save(update_fields=["reopened_at", "reopened_by", "reopen_reason"])
    books.books_day_reopen(day=day, user=user, reason=reason)
    audit_record(
        actor=user, action=AuditAction.DAY_REOPENED, obj=close, after={"day": day.isoformat()}, reason=reason
    )
    return close
