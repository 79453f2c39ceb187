"""Every dashboard figure links to a changelist whose filters show exactly the rows behind it."""

import datetime as dt

import pytest
from django.utils import timezone

from console import selectors
from console.kernel.clock import day_start
from ledger.models import Channel, OrderStatus, StkRequest, StkStatus
from reconciliation.models import ClaimReason, ClaimStatus

from .test_dashboard import make_claim, make_order, make_receipt

pytestmark = pytest.mark.django_db


def rows_at(client, url):
    response = client.get(url)
    assert response.status_code == 200, url
    cl = response.context["cl"]
    # A filter the changelist did not understand would be ignored or raise; both are failures here.
    return sorted(obj.pk for obj in cl.result_list)


@pytest.fixture
def sales(bundles):
    b = bundles["daily-2gb"]
    now = timezone.now()
    return {
        "stk_today": make_order(b, channel=Channel.STK, paid_at=now),
        "till_today": make_order(b, channel=Channel.TILL, status=OrderStatus.DELIVERED, paid_at=now),
        "old": make_order(b, paid_at=now - dt.timedelta(days=9)),
        "failed": make_order(b, status=OrderStatus.FAILED, paid_at=now),
    }


def test_sales_today_links_list_todays_delivered_and_pending_orders(sales, superuser, client_for):
    # A sale is a delivered bundle; paid-but-not-delivered orders have their own link.
    today = timezone.localdate()
    figures = selectors.sales_since(day_start(today), day_start(today + dt.timedelta(days=1)))
    c = client_for(superuser)
    assert rows_at(c, figures.url) == [sales["till_today"].pk]
    assert rows_at(c, figures.stk_url) == []
    assert rows_at(c, figures.till_url) == [sales["till_today"].pk]
    assert rows_at(c, figures.pending_url) == [sales["stk_today"].pk]
    assert figures.total.count == 1 and figures.pending.count == 1


def test_awaiting_delivery_link_lists_paid_orders(sales, superuser, client_for):
    figure = selectors.orders_awaiting_delivery()
    assert rows_at(client_for(superuser), figure["url"]) == sorted([sales["stk_today"].pk, sales["old"].pk])
    assert figure["count"] == 2


def test_claims_links_list_pending_and_each_review_reason(superuser, client_for):
    pending = make_claim("SAA1111111")
    mismatch = make_claim("SAA2222222", status=ClaimStatus.NEEDS_REVIEW, reason=ClaimReason.AMOUNT_MISMATCH)
    unknown = make_claim("SAA3333333", status=ClaimStatus.NEEDS_REVIEW, reason=ClaimReason.UNKNOWN_CODE)
    make_claim("SAA4444444", status=ClaimStatus.VERIFIED)
    figures = selectors.claims_waiting()
    c = client_for(superuser)
    assert rows_at(c, figures["pending"]["url"]) == [pending.pk]
    assert rows_at(c, figures["needs_review"]["url"]) == sorted([mismatch.pk, unknown.pk])
    by_reason = {r["reason"]: r["url"] for r in figures["needs_review"]["by_reason"]}
    assert rows_at(c, by_reason[ClaimReason.AMOUNT_MISMATCH]) == [mismatch.pk]
    assert rows_at(c, by_reason[ClaimReason.UNKNOWN_CODE]) == [unknown.pk]


def test_unmatched_receipts_link_lists_only_suspense(sales, superuser, client_for):
    loose = make_receipt("SBB1111111")
    used = make_receipt("SBB2222222")
    used.order = sales["till_today"]
    used.save()
    figure = selectors.unmatched_receipts()
    response = client_for(superuser).get(figure["url"])
    assert sorted(r.pk for r in response.context["cl"].result_list) == [loose.pk]
    assert "Unmatched (suspense)" in response.content.decode()  # the filter shows as selected


def test_stk_links_list_the_last_24_hours_and_the_failures(sales, superuser, client_for):
    order = sales["stk_today"]
    ok = StkRequest.objects.create(
        order=order,
        gateway="simulator",
        phone=order.payer_msisdn,
        amount=order.price,
        status=StkStatus.SUCCESS,
    )
    bad = StkRequest.objects.create(
        order=order,
        gateway="simulator",
        phone=order.payer_msisdn,
        amount=order.price,
        status=StkStatus.FAILED,
        result_code="1032",
    )
    old = StkRequest.objects.create(
        order=order,
        gateway="simulator",
        phone=order.payer_msisdn,
        amount=order.price,
        status=StkStatus.FAILED,
    )
    StkRequest.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=2))
    health = selectors.stk_health()
    c = client_for(superuser)
    assert rows_at(c, health["url"]) == sorted([ok.pk, bad.pk])
    assert rows_at(c, health["failed_url"]) == [bad.pk]
    assert health["rate"] == 50


def test_dashboard_links_render_for_an_agent_with_take_next(agent, client_for, bundles):
    make_claim("SCC1111111", status=ClaimStatus.NEEDS_REVIEW, reason=ClaimReason.AMBIGUOUS)
    html = client_for(agent).get("/admin/").content.decode()
    assert 'data-testid="take-next"' in html
    assert "status__exact=needs_review" in html
