"""The Nairobi clock: days are Africa/Nairobi days everywhere (books, closes, filters, exports).

Kenya has kept UTC+3 since 1960; without tzdata the fixed offset stands in for the zone.
"""

from __future__ import annotations

import datetime as dt

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        NAIROBI: dt.tzinfo = ZoneInfo("Africa/Nairobi")
    except ZoneInfoNotFoundError:  # pragma: no cover - no tzdata on the machine
        NAIROBI = dt.timezone(dt.timedelta(hours=3), "EAT")
except ImportError:  # pragma: no cover
    NAIROBI = dt.timezone(dt.timedelta(hours=3), "EAT")


def now() -> dt.datetime:
    """The current time, aware, in Nairobi."""
    return dt.datetime.now(tz=NAIROBI)


def today() -> dt.date:
    """Today's Nairobi date."""
    return now().date()


def nairobi_day(when: dt.datetime | dt.date) -> dt.date:
    """The Nairobi date of an aware datetime (a naive one is taken as Nairobi local time; a date is
    itself). A time too close to year 9999 to convert keeps its own date rather than raising."""
    if not isinstance(when, dt.datetime):
        return when
    if when.tzinfo is None:
        return when.date()
    try:
        return when.astimezone(NAIROBI).date()
    except OverflowError:
        return when.date()


def day_start(day: dt.date) -> dt.datetime:
    """00:00 Nairobi time on `day`, aware."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=NAIROBI)


def day_range(date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the inclusive Nairobi date range `date_from` … `date_to`."""
    return day_start(date_from), day_start(date_to + dt.timedelta(days=1))


def as_nairobi(value: dt.datetime) -> dt.datetime:
    """An aware datetime shown in Nairobi time; a naive one is taken as Nairobi local time."""
    if value.tzinfo is None:
        return value.replace(tzinfo=NAIROBI)
    return value.astimezone(NAIROBI)
