"""Reads of the books shared by the admin pages, the exports and the management commands.

Days are Africa/Nairobi days: a date range [from, to] means from 00:00 Nairobi time on `from`
to just before 00:00 on the day after `to`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, DateField, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django_filters import BaseInFilter, CharFilter, ChoiceFilter, DateFilter, FilterSet

from console.kernel.clock import day_range, day_start, today
from console.kernel.filters import filtered
from console.kernel.money import ZERO
from ledger.models import Account, Channel, EntryKind, JournalEntry, Order, OrderStatus, Posting

# The exported columns, in order; exports and tests name them from here.
EXPORT_COLUMNS = [
    "Entry number",
    "Date/time (Africa/Nairobi)",
    "Account code",
    "Account name",
    "Debit",
    "Credit",
    "Order reference",
    "M-Pesa receipt",
    "Channel",
    "Memo",
]
# What one exported row reads from the database: no model object per row.
EXPORT_FIELDS = (
    "entry__number",
    "entry__posted_at",
    "account__code",
    "account__name",
    "amount",
    "entry__order__reference",
    "entry__receipt_code",
    "entry__channel",
    "entry__memo",
)


# ---------------------------------------------------------------------------------------------
# Trial balance
# ---------------------------------------------------------------------------------------------
@dataclass
class TrialBalanceRow:
    account: Account
    balance: Decimal  # + debit, - credit

    @property
    def debit(self) -> Decimal | None:
        return self.balance if self.balance > 0 else None

    @property
    def credit(self) -> Decimal | None:
        return -self.balance if self.balance < 0 else None


@dataclass
class TrialBalance:
    as_of: dt.date
    rows: list[TrialBalanceRow] = field(default_factory=list)

    @property
    def total_debit(self) -> Decimal:
        return sum((r.debit or ZERO for r in self.rows), ZERO)

    @property
    def total_credit(self) -> Decimal:
        return sum((r.credit or ZERO for r in self.rows), ZERO)

    @property
    def balanced(self) -> bool:
        return self.total_debit == self.total_credit


def trial_balance(*, as_of: dt.date | None = None) -> TrialBalance:
    """Every account's balance at the end of Nairobi day `as_of` (default: today)."""
    as_of = as_of or today()
    end = day_start(as_of + dt.timedelta(days=1))
    sums = dict(
        Posting.objects.filter(entry__posted_at__lt=end)
        .values("account_id")
        .annotate(total=Sum("amount"))
        .values_list("account_id", "total")
    )
    rows = [TrialBalanceRow(account=a, balance=sums.get(a.pk) or ZERO) for a in Account.objects.all()]
    return TrialBalance(as_of=as_of, rows=rows)


# ---------------------------------------------------------------------------------------------
# Sales: one definition for the dashboard, the daily summary and the order list's filter
# ---------------------------------------------------------------------------------------------
# A sale is what the books call one: a delivered bundle (Dr Bundles owed / Cr Bundle sales, at the
# amount paid), counted on the Nairobi day its money moved (the order's paid_at). An order paid but
# not delivered yet is its own figure, "paid, delivery pending"; refunded and failed orders are neither.
SOLD = Q(status=OrderStatus.DELIVERED)
PAID_PENDING = Q(status=OrderStatus.PAID)
# The same orders as SOLD | PAID_PENDING, spelled as the sales index's condition (order_sales_by_paid_at)
# so the planner reads them from that index alone.
SALE_OR_PENDING = Q(status__in=[OrderStatus.DELIVERED, OrderStatus.PAID])
SALE_AMOUNT = Coalesce("amount_paid", "price")
CHANNEL_LABELS = {"stk": "STK push", "till": "Till (manual)"}


@dataclass
class Tally:
    count: int = 0
    amount: Decimal = ZERO


def _total(tallies) -> Tally:
    tallies = list(tallies)
    return Tally(sum(t.count for t in tallies), sum((t.amount for t in tallies), ZERO))


@dataclass
class SalesFigures:
    """Sales and paid-but-not-delivered orders whose money moved in [start, end), by channel."""

    start: dt.datetime
    end: dt.datetime | None
    by_channel: dict[str, Tally]
    pending_by_channel: dict[str, Tally]

    @property
    def total(self) -> Tally:
        return _total(self.by_channel.values())

    @property
    def pending(self) -> Tally:
        return _total(self.pending_by_channel.values())


def _paid_between(start: dt.datetime, end: dt.datetime | None) -> QuerySet:
    orders = Order.objects.filter(paid_at__gte=start)
    return orders.filter(paid_at__lt=end) if end is not None else orders


def _figures(rows, start: dt.datetime, end: dt.datetime | None) -> SalesFigures:
    """SalesFigures from rows of (status, channel, n, amount): the one place rows become figures."""
    figures = SalesFigures(
        start=start,
        end=end,
        by_channel={c: Tally() for c in Channel.values},
        pending_by_channel={c: Tally() for c in Channel.values},
    )
    for row in rows:
        into = figures.by_channel if row["status"] == OrderStatus.DELIVERED else figures.pending_by_channel
        was = into[row["channel"]]
        into[row["channel"]] = Tally(was.count + row["n"], was.amount + (row["amount"] or ZERO))
    return figures


def _sales_rows(start: dt.datetime, end: dt.datetime | None) -> QuerySet:
    """Rows of (status, channel, n, amount) of the orders paid in [start, end): what a sale is."""
    return (
        _paid_between(start, end)
        .filter(SALE_OR_PENDING)
        .values("status", "channel")
        .annotate(n=Count("id"), amount=Sum(SALE_AMOUNT))
        .order_by()
    )


def sales_between(start: dt.datetime, end: dt.datetime | None = None) -> SalesFigures:
    """Sales and "paid, delivery pending" of the orders paid in [start, end), by channel (one query)."""
    return _figures(_sales_rows(start, end), start, end)


@dataclass
class SalesDays:
    """Sales rows per Nairobi day for a run of days (one query); figures for any days inside it."""

    first: dt.date
    last: dt.date
    rows: dict[dt.date, list[dict]]

    def figures(self, first: dt.date, last: dt.date) -> SalesFigures:
        """The same figures sales_between gives for the Nairobi days first..last (inclusive)."""
        if first < self.first or last > self.last:
            raise ValueError(f"{first}..{last} is outside {self.first}..{self.last}")
        days = (first + dt.timedelta(days=i) for i in range((last - first).days + 1))
        rows = [row for day in days for row in self.rows.get(day, [])]
        return _figures(rows, day_start(first), day_start(last + dt.timedelta(days=1)))


def sales_days(first: dt.date, last: dt.date) -> SalesDays:
    """Sales and paid-pending rows per Nairobi day from `first` to `last` (inclusive), one query:
    the dashboard's today, week and chart read from it instead of scanning the orders three times.

    The query is sales_between's for each day (between its day_start bounds), joined by UNION
    ALL: each day is an index range of its own, grouped on its own, far cheaper than labelling
    each of the fortnight's ~200k rows (at 1M orders) with its day and grouping them all at once."""
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    per_day = [
        _sales_rows(*day_range(day, day)).annotate(day=Value(day, output_field=DateField())) for day in days
    ]
    rows = per_day[0].union(*per_day[1:], all=True) if len(per_day) > 1 else per_day[0]
    by_day: dict[dt.date, list[dict]] = {}
    for row in rows:
        by_day.setdefault(row["day"], []).append(row)
    return SalesDays(first=first, last=last, rows=by_day)


def sales_by_bundle(start: dt.datetime, end: dt.datetime | None = None) -> list[tuple[str, Tally]]:
    """Sales of the orders paid in [start, end) by bundle, biggest first."""
    rows = (
        _paid_between(start, end)
        .filter(SOLD)
        .values("bundle__name")
        .annotate(n=Count("id"), amount=Sum(SALE_AMOUNT))
        .order_by("-amount", "bundle__name")
    )
    return [(r["bundle__name"] or "—", Tally(r["n"], r["amount"] or ZERO)) for r in rows]


# ---------------------------------------------------------------------------------------------
# Daily summary
# ---------------------------------------------------------------------------------------------
@dataclass
class SummaryLine:
    label: str
    count: int
    amount: Decimal


@dataclass
class DailySummary:
    day: dt.date
    sales: SalesFigures
    by_channel: list[SummaryLine]
    by_bundle: list[SummaryLine]
    deliveries: SummaryLine
    refunds: SummaryLine

    @property
    def total(self) -> SummaryLine:
        total = self.sales.total
        return SummaryLine("Total", total.count, total.amount)

    @property
    def pending(self) -> SummaryLine:
        pending = self.sales.pending
        return SummaryLine("Paid, delivery pending", pending.count, pending.amount)


def daily_summary(*, day: dt.date) -> DailySummary:
    """Sales of one Nairobi day (see SOLD) by channel and by bundle, the paid orders still waiting
    for delivery, and the day's delivery and refund entries. Amounts are the debit side."""
    start, end = day_range(day, day)
    sales = sales_between(start, end)
    by_channel = [
        SummaryLine(CHANNEL_LABELS.get(channel, channel), tally.count, tally.amount)
        for channel, tally in sales.by_channel.items()
        if tally.count
    ]
    by_bundle = [SummaryLine(name, t.count, t.amount) for name, t in sales_by_bundle(start, end)]
    debits = Posting.objects.filter(amount__gt=0, entry__posted_at__gte=start, entry__posted_at__lt=end)

    def _line(label, qs):
        agg = qs.aggregate(n=Count("entry_id", distinct=True), total=Sum("amount"))
        return SummaryLine(label, agg["n"] or 0, agg["total"] or ZERO)

    return DailySummary(
        day=day,
        sales=sales,
        by_channel=by_channel,
        by_bundle=by_bundle,
        deliveries=_line("Delivered", debits.filter(entry__kind=EntryKind.DELIVERY)),
        refunds=_line("Refunded", debits.filter(entry__kind=EntryKind.REFUND)),
    )


# ---------------------------------------------------------------------------------------------
# Postings for export
# ---------------------------------------------------------------------------------------------
# Booked after a close: money that moved on a closed day, booked on the next open one.
AFTER_CLOSE = Q(value_at__isnull=False, posted_at__gt=F("value_at"))


class JournalEntryFilter(FilterSet):
    channel = ChoiceFilter(choices=Channel.choices)  # fixed choices: no SELECT DISTINCT per page
    after_close = ChoiceFilter(
        choices=[("yes", "Yes: value date in a closed day")], method="filter_after_close"
    )

    class Meta:
        model = JournalEntry
        fields: list[str] = []

    def filter_after_close(self, queryset, name, value):
        return queryset.filter(AFTER_CLOSE) if value == "yes" else queryset


class KeysFilter(BaseInFilter, CharFilter):
    """A comma-separated list of keys."""


class PostingFilter(FilterSet):
    """The postings of an export or a ledger page: Nairobi days (inclusive), accounts, channel."""

    date_from = DateFilter(method="filter_date_from")
    date_to = DateFilter(method="filter_date_to")
    accounts = KeysFilter(field_name="account__key", lookup_expr="in")  # "mpesa_till,bundles_owed"
    channel = ChoiceFilter(field_name="entry__channel", choices=Channel.choices)

    class Meta:
        model = Posting
        fields: list[str] = []

    def filter_date_from(self, queryset, name, value):
        return queryset.filter(entry__posted_at__gte=day_start(value))

    def filter_date_to(self, queryset, name, value):
        return queryset.filter(entry__posted_at__lt=day_start(value + dt.timedelta(days=1)))


def postings_for_export(
    *,
    date_from: dt.date,
    date_to: dt.date,
    account_keys: list[str] | None = None,
    channel: str = "",
) -> QuerySet:
    """Postings of the inclusive Nairobi date range, in journal order, as tuples of EXPORT_FIELDS."""
    rows = filtered(
        PostingFilter,
        Posting.objects.all(),
        date_from=date_from.isoformat(),
        date_to=date_to.isoformat(),
        accounts=",".join(account_keys or []),
        channel=channel,
    )
    return rows.order_by("entry__seq", "id").values_list(*EXPORT_FIELDS)


def journal_search(queryset: QuerySet, term: str) -> QuerySet:
    """Entries whose number, M-Pesa receipt or order reference is `term` (any case).

    One indexed lookup per field, OR-ed on the entry's own columns: the order reference is
    resolved first, so there is no join for the planner to turn into two sequential scans.
    """
    term = term.strip().upper()
    if not term:
        return queryset
    order_ids = list(Order.objects.filter(reference=term).values_list("pk", flat=True)[:50])
    match = Q(number=term) | Q(receipt_code=term)
    if order_ids:
        match |= Q(order_id__in=order_ids)
    return queryset.filter(match)
