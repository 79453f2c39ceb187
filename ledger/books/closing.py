"""Closed days: an entry whose money moved on a closed Nairobi day is booked on the next open day."""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction

from console.kernel.audit import AuditAction, audit_record
from console.kernel.clock import day_start, nairobi_day
from ledger.books.errors import DayNotClosed, require_reason
from ledger.models import BooksClosedDay

DAY_NOT_CLOSED = "The books for {day} are not closed."


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
        audit_record(
            actor=user, action=AuditAction.BOOKS_DAY_CLOSED, obj=closed, after={"day": day.isoformat()}
        )
    return closed


@transaction.atomic
def books_day_reopen(*, day: dt.date, user, reason: str) -> None:
    """Reopen ``day``'s books with a reason (audited). Raises DayNotClosed."""
    reason = require_reason(reason)
    closed = BooksClosedDay.objects.select_for_update().filter(day=day).first()
    if closed is None:
        raise DayNotClosed(DAY_NOT_CLOSED.format(day=day.isoformat()))
    after = {"day": day.isoformat()}
    audit_record(actor=user, action=AuditAction.BOOKS_DAY_REOPENED, obj=closed, after=after, reason=reason)
    closed.delete()
