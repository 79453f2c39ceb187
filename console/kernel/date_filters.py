"""The admin's date-time range list filter, on Nairobi days.

unfold's RangeDateTimeFilter filters with the naive datetime it parsed (Django warns and reads it
in the current zone) and ignores a date without a time. Here a date alone is a whole Nairobi day:
"from" is 00:00 on that day, "to" takes in all of its day (up to 00:00 the day after, exclusive);
a time, when given, is a Nairobi time on that day. The dashboard's links use the same parameters.
"""

from __future__ import annotations

import datetime as dt

from django.core.validators import EMPTY_VALUES
from unfold.contrib.filters.admin import RangeDateTimeFilter
from unfold.utils import parse_date_str

from console.kernel.clock import NAIROBI, day_start

TIME_FORMATS = ("%H:%M:%S", "%H:%M", "%H:%M:%S.%f")


def _parse_time(value) -> dt.time | None:
    for fmt in TIME_FORMATS:
        try:
            return dt.datetime.strptime(str(value).strip(), fmt).time()
        except ValueError:
            continue
    return None


def range_bound(date_value, time_value, *, end: bool) -> tuple[str, dt.datetime] | None:
    """(lookup, aware Nairobi datetime) for one side of the range, or None when the date is empty or
    unreadable. With no time, the start side is 00:00 and the end side is 00:00 the next day (``lt``)."""
    if date_value in EMPTY_VALUES:
        return None
    day = parse_date_str(str(date_value).strip())
    if day is None:
        return None
    if isinstance(day, dt.datetime):
        day = day.date()
    at = _parse_time(time_value) if time_value not in EMPTY_VALUES else None
    if at is None:
        if end:
            return "lt", day_start(day + dt.timedelta(days=1))
        return "gte", day_start(day)
    return ("lte" if end else "gte"), dt.datetime.combine(day, at, tzinfo=NAIROBI)


def range_params(field: str, start: dt.datetime, end: dt.datetime | None = None) -> dict[str, str]:
    """Query-string values for NairobiRangeDateTimeFilter on ``field`` from ``start`` (and up to,
    not including, ``end``), both shown as Nairobi dates and times."""
    local = start.astimezone(NAIROBI)
    params = {f"{field}_from_0": local.strftime("%Y-%m-%d"), f"{field}_from_1": local.strftime("%H:%M:%S")}
    if end is not None:
        # The filter's "to" is inclusive; a whole-day range names its last day without a time.
        last = (end - dt.timedelta(microseconds=1)).astimezone(NAIROBI)
        params[f"{field}_to_0"] = last.strftime("%Y-%m-%d")
        if last.time() != dt.time(23, 59, 59, 999999):
            params[f"{field}_to_1"] = last.strftime("%H:%M:%S")
    return params


class NairobiRangeDateTimeFilter(RangeDateTimeFilter):
    """unfold's date-time range filter with aware Africa/Nairobi bounds; a date alone is a whole day."""

    def queryset(self, request, queryset):
        name = self.parameter_name
        filters = {}
        for side, end in (("from", False), ("to", True)):
            bound = range_bound(
                self.used_parameters.get(f"{name}_{side}_0"),
                self.used_parameters.get(f"{name}_{side}_1"),
                end=end,
            )
            if bound:
                lookup, value = bound
                filters[f"{name}__{lookup}"] = value
        return queryset.filter(**filters)
