"""One definition per filter: the admin's list filter, the dashboard's figure and its link agree."""

import datetime as dt
from decimal import Decimal

import pytest

from console.kernel.clock import nairobi_day
from console.kernel.filters import filtered, filterset_list_filter
from ledger import books
from ledger.books.selectors import PostingFilter
from ledger.models import OrderStatus, Posting, StkStatus
from ledger.selectors import OrderFilter, StkRequestFilter
from tests.ledger.factories import OrderFactory, StkRequestFactory

pytestmark = pytest.mark.django_db


def test_the_sale_filter_keeps_delivered_orders_and_pending_keeps_paid_ones():
    # A sale was "paid or delivered"; it is now what the books call one: a delivered bundle.
    sold = OrderFactory(status=OrderStatus.DELIVERED).pk
    pending = OrderFactory(status=OrderStatus.PAID).pk
    for status in (OrderStatus.PENDING_PAYMENT, OrderStatus.FAILED, OrderStatus.REFUNDED):
        OrderFactory(status=status)
    assert set(filtered(OrderFilter, sale="yes").values_list("pk", flat=True)) == {sold}
    assert set(filtered(OrderFilter, sale="pending").values_list("pk", flat=True)) == {pending}


def test_the_failed_outcome_is_failed_expired_or_error():
    failed = {StkRequestFactory(status=s).pk for s in (StkStatus.FAILED, StkStatus.EXPIRED, StkStatus.ERROR)}
    StkRequestFactory(status=StkStatus.SUCCESS)
    StkRequestFactory(status=StkStatus.QUEUED)
    assert set(filtered(StkRequestFilter, outcome="failed").values_list("pk", flat=True)) == failed


def test_an_unknown_value_is_an_error_for_code_and_shows_every_row_in_the_admin(rf):
    OrderFactory(status=OrderStatus.PENDING_PAYMENT)
    with pytest.raises(ValueError):
        filtered(OrderFilter, sale="maybe")
    list_filter = filterset_list_filter(OrderFilter, "sale", title="sale")
    request = rf.get("/", {"sale": "maybe"})
    instance = list_filter(request, {"sale": "maybe"}, OrderFactory._meta.model, None)
    queryset = OrderFactory._meta.model.objects.all()
    assert instance.queryset(request, queryset).count() == 1
    assert instance.lookup_choices == [("yes", "Sales (delivered)"), ("pending", "Paid, delivery pending")]


def test_postings_are_kept_by_nairobi_day_inclusive():
    order = OrderFactory(status=OrderStatus.PAID, gateway="payhero", price=Decimal("150"))
    entry = books.post_stk_payment(
        order=order, amount=Decimal("150"), receipt="UL1AB2CD3E", gateway="payhero"
    )
    day = nairobi_day(entry.posted_at)

    def kept(first, last, **more):
        return filtered(
            PostingFilter,
            Posting.objects.all(),
            date_from=first.isoformat(),
            date_to=last.isoformat(),
            **more,
        )

    one = dt.timedelta(days=1)
    assert kept(day, day).count() == 2
    assert kept(day - one, day - one).count() == 0 and kept(day + one, day + one).count() == 0
    assert [p.amount for p in kept(day, day, accounts="bundles_owed")] == [Decimal("-150.00")]
