"""The dashboard reads its sales once: today, this week and the 14-day chart come from one
query (ledger.books.selectors.sales_days) and equal what sales_between says for the same days;
the page's query count does not grow with the rows."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from console import selectors
from console.kernel.clock import day_start
from ledger.books.selectors import sales_between
from ledger.models import Channel, OrderStatus

from .test_dashboard import make_order

pytestmark = pytest.mark.django_db


def _same(a, b):
    assert (a.total.count, a.total.amount, a.pending.count, a.pending.amount) == (
        b.total.count,
        b.total.amount,
        b.pending.count,
        b.pending.amount,
    )
    assert {c: (t.count, t.amount) for c, t in a.by_channel.items()} == {
        c: (t.count, t.amount) for c, t in b.by_channel.items()
    }


@pytest.fixture
def fortnight(bundles):
    daily, weekly = bundles["daily-2gb"], bundles["weekly-15gb"]
    now = timezone.now()
    for days_ago in (0, 0, 1, 3, 6, 9, 13, 15):
        when = now - dt.timedelta(days=days_ago)
        make_order(daily, channel=Channel.STK, status=OrderStatus.DELIVERED, paid_at=when)
        make_order(weekly, channel=Channel.TILL, status=OrderStatus.PAID, paid_at=when)
        make_order(daily, status=OrderStatus.REFUNDED, paid_at=when)


def test_the_sales_panel_equals_sales_between_for_today_the_week_and_each_chart_day(fortnight):
    today = timezone.localdate()
    week_start = today - dt.timedelta(days=today.weekday())
    tomorrow = day_start(today + dt.timedelta(days=1))
    with CaptureQueriesContext(connection) as ctx:
        panel = selectors.sales_panel(today, week_start)
    assert len(ctx.captured_queries) == 1
    _same(panel.today.figures, sales_between(day_start(today), tomorrow))
    _same(panel.week.figures, sales_between(day_start(week_start), tomorrow))
    assert panel.today.total.count == 2 and panel.today.pending.count == 2
    chart = panel.chart
    assert chart == selectors.sales_chart(14, today)
    for index, label in enumerate(chart["labels"]):
        day = today - dt.timedelta(days=13 - index)
        assert label == day.strftime("%d %b")
        sold = sales_between(day_start(day), day_start(day + dt.timedelta(days=1)))
        stk = next(d for d in chart["datasets"] if d["label"] == Channel.STK.label)
        assert stk["data"][index] == float(sold.by_channel[Channel.STK].amount)


def _dashboard_queries(client):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("admin:index")).status_code == 200
    return len(ctx.captured_queries)


def test_the_dashboard_runs_a_fixed_number_of_queries(superuser, client_for, bundles, settings):
    call_command("setup_schedules", verbosity=0)  # the jobs panel as in production
    client = client_for(superuser)
    client.get(reverse("admin:index"))
    empty = _dashboard_queries(client)
    now = timezone.now()
    for days_ago in range(20):
        make_order(
            bundles["daily-2gb"], status=OrderStatus.DELIVERED, paid_at=now - dt.timedelta(days=days_ago)
        )
        make_order(bundles["daily-2gb"], status=OrderStatus.PAID, paid_at=now - dt.timedelta(days=days_ago))
    # Session, user and second factor (3), then the panels (9): sales, awaiting delivery, STK,
    # claims, till receipts (unmatched and partly used together), the books' watch (the account
    # and the after-close count, then the account's sum), bundles, jobs.
    assert _dashboard_queries(client) == empty <= 12
