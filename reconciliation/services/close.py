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
NO_ORDER_YET = "No order yet (waiting for a claim)"


def _cents(value) -> Decimal:
    return Decimal(value or 0).quantize(CENT)


def after_close_entries(day: dt.date):
    """Entries whose money moved on ``day`` but that were booked later, because it was closed."""
    start, end = day_range(day, day)
    return JournalEntry.objects.filter(
        value_at__gte=start, value_at__lt=end, posted_at__gte=end, posted_at__gt=F("value_at")
    ).order_by("seq")


def _receipt_row(what, code, amount, receipt_id, order="", order_id=None) -> dict:
    return {
        "what": what,
        "receipt": code,
        "amount": str(_cents(amount)),
        "receipt_id": receipt_id,
        "order": order or "",
        "order_id": order_id,
    }


def day_figures(*, day: dt.date) -> dict:
    """Totals, differences and deliveries still pending for ``day`` (read-only; JSON-ready strings).

    Each receipt of the day is delivered (on that day or later), paid with its delivery still
    pending (normal: not a difference), or a difference: no order yet, or an order that was not
    delivered (refunded, needs review…). Money and books that disagree are differences too.
    """
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
        booked = till_postings.values_list("entry__receipt_code", "entry_id").annotate(s=Sum("amount"))
        in_books = {code for code, _, _ in booked}
        not_booked = receipts.exclude(code__in=in_books).values_list("code", "amount", "id")
        rows = [_receipt_row("Receipt not in the books", c, a, pk) for c, a, pk in not_booked[:ROW_LIMIT]]
        codes = set(receipts.values_list("code", flat=True))
        for code, entry_id, amount in booked.order_by("entry__seq"):
            if code not in codes and len(rows) < ROW_LIMIT:
                row = _receipt_row("Booked with no receipt", code or "—", amount, None)
                rows.append({**row, "entry_id": entry_id})
        differences.append(
            {
                "check": "paid_in_vs_books",
                "title": "Till money and the books disagree",
                "difference": str(paid_in - books_movement),
                "rows": rows,
            }
        )

    pending_rows, missing_rows = [], []
    pending_sum = missing_sum = ZERO
    pending_count = 0
    by_receipt = receipts.values_list("code", "amount", "id", "order__reference", "order_id", "order__status")
    for code, amount, pk, reference, order_id, status in by_receipt.order_by("paid_at", "id").iterator():
        if status == OrderStatus.DELIVERED:
            continue
        if status == OrderStatus.PAID:
            pending_sum, pending_count = pending_sum + amount, pending_count + 1
            if len(pending_rows) < ROW_LIMIT:
                pending_rows.append(
                    _receipt_row("Paid, delivery pending", code, amount, pk, reference, order_id)
                )
            continue
        missing_sum += amount
        what = (
            "No order yet (waiting for a claim)" if order_id is None else f"Order {status.replace('_', ' ')}"
        )
        if len(missing_rows) < ROW_LIMIT:
            missing_rows.append(_receipt_row(what, code, amount, pk, reference, order_id))
    if missing_rows:
        differences.append(
            {
                "check": "paid_in_vs_delivered",
                "title": "Till money with nothing delivered for it",
                "difference": str(_cents(missing_sum)),
                "rows": missing_rows,
            }
        )
    # Delivered this day for money of another day: timing, not a difference.
    other_days = [
        {
            "order": r,
            "order_id": pk,
            "receipt": m or "",
            "amount": str(_cents(a if a is not None else p)),
            "paid": timezone.localtime(paid).date().isoformat() if paid else "",
        }
        for r, pk, m, a, p, paid in delivered.exclude(
            till_receipt__paid_at__gte=start, till_receipt__paid_at__lt=end
        ).values_list("reference", "id", "mpesa_receipt", "amount_paid", "price", "paid_at")[:ROW_LIMIT]
    ]
    late = [
        {"entry": n, "kind": k, "receipt": r, "booked": timezone.localtime(p).isoformat(timespec="minutes")}
        for n, k, r, p in after_close.values_list("number", "kind", "receipt_code", "posted_at")[:ROW_LIMIT]
    ]
    pending = {"count": pending_count, "amount": str(_cents(pending_sum)), "rows": pending_rows}
    figures = {
        "day": day.isoformat(),
        "after_close": late,
        "paid_in": str(paid_in),
        "receipts": receipts.count(),
        "books_till_movement": str(books_movement),
        "delivered": str(delivered_sum),
        "orders_delivered": delivered.count(),
        "balanced": not differences,
        "differences": differences,
        "delivery_pending": pending,
        "delivered_from_other_days": other_days,
    }
    figures["status"] = close_status(figures)
    return figures


def close_status(figures: dict) -> str:
    """What the day's figures mean, in a few words: "Balanced", "Balanced — 3 deliveries pending",
    "2 differences to check" (figures signed off before this was recorded read from `balanced`)."""
    differences = figures.get("differences") or []
    to_check = sum(len(d.get("rows") or []) or 1 for d in differences)
    if to_check:
        return f"{to_check} difference{'s' if to_check != 1 else ''} to check"
    if not figures.get("balanced", True):
        return "Differences to check"
    pending = (figures.get("delivery_pending") or {}).get("count", 0)
    if pending:
        return f"Balanced — {pending} deliver{'ies' if pending != 1 else 'y'} pending"
    return "Balanced"


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
