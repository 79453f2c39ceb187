"""The admin's date range filter works on aware Nairobi days, and naive datetimes fail the suite."""

import datetime as dt
import warnings

import pytest
from django.urls import reverse

from console.kernel.clock import NAIROBI, day_start
from console.kernel.date_filters import range_bound, range_params
from ledger.models import Channel, Order, OrderStatus

pytestmark = pytest.mark.django_db


def _order(bundle, paid_at):
    return Order.objects.create(
        bundle=bundle,
        price=bundle.price,
        payer_msisdn="254712345678",
        recipient_msisdn="254712345678",
        channel=Channel.STK,
        status=OrderStatus.PAID,
        paid_at=paid_at,
    )


def test_a_date_alone_is_the_whole_nairobi_day():
    day = dt.date(2026, 3, 2)
    assert range_bound("2026-03-02", "", end=False) == ("gte", day_start(day))
    assert range_bound("2026-03-02", None, end=True) == ("lt", day_start(day + dt.timedelta(days=1)))
    lookup, value = range_bound("2026-03-02", "14:30", end=True)
    assert (lookup, value) == ("lte", dt.datetime(2026, 3, 2, 14, 30, tzinfo=NAIROBI))
    assert value.utcoffset() == dt.timedelta(hours=3)
    assert range_bound("", "10:00", end=False) is None
    assert range_bound("not a date", "", end=False) is None


def test_range_params_name_the_last_day_of_a_whole_day_range():
    start = day_start(dt.date(2026, 3, 2))
    params = range_params("paid_at", start, day_start(dt.date(2026, 3, 3)))
    assert params == {
        "paid_at_from_0": "2026-03-02",
        "paid_at_from_1": "00:00:00",
        "paid_at_to_0": "2026-03-02",
    }


def test_order_filter_keeps_the_nairobi_day_without_naive_warnings(client_for, superuser, bundles):
    bundle = bundles["daily-2gb"]
    # 00:30 Nairobi is still 1 March in UTC; 23:50 Nairobi is 20:50 UTC the same day.
    early = _order(bundle, dt.datetime(2026, 3, 2, 0, 30, tzinfo=NAIROBI))
    late = _order(bundle, dt.datetime(2026, 3, 2, 23, 50, tzinfo=NAIROBI))
    before = _order(bundle, dt.datetime(2026, 3, 1, 23, 50, tzinfo=NAIROBI))
    after = _order(bundle, dt.datetime(2026, 3, 3, 0, 10, tzinfo=NAIROBI))
    client = client_for(superuser)
    url = reverse("admin:ledger_order_changelist")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        response = client.get(url, {"paid_at_from_0": "2026-03-02", "paid_at_to_0": "2026-03-02"})
    assert response.status_code == 200
    shown = {o.pk for o in response.context["cl"].result_list}
    assert shown == {early.pk, late.pk}
    assert before.pk not in shown and after.pk not in shown


def test_a_naive_datetime_in_a_query_fails_the_suite():
    with pytest.raises(RuntimeWarning, match="received a naive datetime"):
        list(Order.objects.filter(paid_at__gte=dt.datetime(2026, 3, 2)))
