"""The dashboard, the finder and the customer timeline."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from console import selectors
from console.kernel.clock import day_start
from ledger.models import Channel, Order, OrderStatus, StkRequest, StkStatus
from reconciliation.models import Claim, ClaimReason, ClaimStatus, ReceiptSource, TillReceipt, WhatsAppMessage

pytestmark = pytest.mark.django_db


def make_order(
    bundle, *, status=OrderStatus.PAID, channel=Channel.STK, paid_at=None, phone="254712345678", **kw
):
    return Order.objects.create(
        bundle=bundle,
        price=bundle.price,
        payer_msisdn=phone,
        recipient_msisdn=phone,
        channel=channel,
        status=status,
        paid_at=paid_at or timezone.now(),
        **kw,
    )


def make_claim(code, *, status=ClaimStatus.PENDING, reason="", sender="254712345678", at=None):
    at = at or timezone.now()
    msg = WhatsAppMessage.objects.create(
        sender_msisdn=sender, sent_at=at, text=f"paid {code}", fingerprint=f"{sender}-{code}-{at.timestamp()}"
    )
    return Claim.objects.create(
        message=msg,
        sender_msisdn=sender,
        code=code,
        recipient_msisdn=sender,
        claimed_at=at,
        status=status,
        reason=reason,
    )


def make_receipt(code, amount="150.00", paid_at=None):
    return TillReceipt.objects.create(
        code=code, amount=Decimal(amount), paid_at=paid_at or timezone.now(), source=ReceiptSource.STATEMENT
    )


def seed(bundles, n):
    daily = bundles["daily-2gb"]
    for i in range(n):
        make_order(daily, channel=Channel.STK if i % 2 else Channel.TILL)
        make_claim(f"SAE3YULR{i:02d}", status=ClaimStatus.NEEDS_REVIEW, reason=ClaimReason.AMOUNT_MISMATCH)
        make_receipt(f"TCG3YADR{i:02d}")
        order = make_order(daily, status=OrderStatus.PENDING_PAYMENT, paid_at=None)
        StkRequest.objects.create(
            order=order,
            gateway="simulator",
            phone="254712345678",
            amount=daily.price,
            status=StkStatus.FAILED,
            result_code="1032",
            result_desc="Request cancelled by user",
            checkout_request_id=f"ws_CO_{i}",
        )


def test_sales_today_counts_delivered_orders_by_channel_and_paid_ones_apart(bundles):
    # Sales were "paid or delivered"; they are now what the books call sales: delivered bundles.
    daily, weekly = bundles["daily-2gb"], bundles["weekly-15gb"]
    make_order(daily, channel=Channel.STK, status=OrderStatus.DELIVERED)
    make_order(weekly, channel=Channel.TILL, status=OrderStatus.DELIVERED)
    make_order(daily, channel=Channel.STK)  # paid, delivery pending: beside sales, not in them
    make_order(daily, status=OrderStatus.REFUNDED)  # not a sale
    make_order(daily, status=OrderStatus.FAILED, paid_at=None)  # not a sale
    three_days_ago = timezone.now() - dt.timedelta(days=3)
    make_order(daily, status=OrderStatus.DELIVERED, paid_at=three_days_ago)  # not today
    figures = selectors.sales_since(day_start(timezone.localdate()))
    assert figures.by_channel["stk"].count == 1
    assert figures.by_channel["stk"].amount == Decimal("150.00")
    assert figures.by_channel["till"].amount == weekly.price
    assert figures.total.amount == Decimal("150.00") + weekly.price
    assert (figures.pending.count, figures.pending.amount) == (1, Decimal("150.00"))


def test_unmatched_receipts_sum_and_count(db):
    make_receipt("TCG3YADR1X", "150.00")
    make_receipt("TCG3YADR2X", "750.00")
    data = selectors.unmatched_receipts()
    assert data["count"] == 2
    assert data["sum"] == Decimal("900.00")


def test_claims_waiting_split_by_reason_with_links(db):
    make_claim("SAE3YULR0Y")
    make_claim("SAE3YULR1Y", status=ClaimStatus.NEEDS_REVIEW, reason=ClaimReason.CODE_ALREADY_USED)
    make_claim("SAE3YULR2Y", status=ClaimStatus.NEEDS_REVIEW, reason=ClaimReason.CODE_ALREADY_USED)
    make_claim("SAE3YULR3Y", status=ClaimStatus.VERIFIED)
    data = selectors.claims_waiting()
    assert data["pending"]["count"] == 1
    assert data["needs_review"]["count"] == 2
    (row,) = data["needs_review"]["by_reason"]
    assert row["reason"] == "code_already_used" and row["count"] == 2
    assert "reason__exact=code_already_used" in row["url"]


def test_stk_health_rate_and_top_failure(bundles):
    daily = bundles["daily-2gb"]
    for i, status in enumerate([StkStatus.SUCCESS, StkStatus.SUCCESS, StkStatus.SUCCESS, StkStatus.FAILED]):
        order = make_order(daily, status=OrderStatus.PENDING_PAYMENT, paid_at=None)
        StkRequest.objects.create(
            order=order,
            gateway="simulator",
            phone="254712345678",
            amount=daily.price,
            status=status,
            result_code="0" if status == StkStatus.SUCCESS else "1",
            result_desc="The balance is insufficient for the transaction.",
            checkout_request_id=f"ws_CO_h{i}",
        )
    health = selectors.stk_health()
    assert health["rate"] == 75
    assert health["top_failures"][0]["code"] == "1"


def test_sales_chart_has_fourteen_days_and_both_channels(bundles):
    make_order(bundles["daily-2gb"], channel=Channel.TILL, status=OrderStatus.DELIVERED)
    make_order(bundles["daily-2gb"], channel=Channel.TILL)  # paid, not delivered: not a sale yet
    chart = selectors.sales_chart(14)
    assert len(chart["labels"]) == 14
    till = next(d for d in chart["datasets"] if d["label"].startswith("Till"))
    assert till["data"][-1] == 150.0


def test_worker_silent_warning_when_no_task_ran(db):
    from django_q.models import Schedule

    Schedule.objects.create(
        name="reconcile", func="reconciliation.tasks.reconcile", schedule_type="I", minutes=1
    )
    assert selectors.job_status()["worker_silent"] is True


def test_no_schedules_no_worker_warning_in_one_query(db, django_assert_num_queries):
    with django_assert_num_queries(1):
        status = selectors.job_status()
    assert status == {"jobs": [], "worker_silent": False, "last_activity": None}


@pytest.mark.parametrize("role", ["agent", "finance", "manager", "superuser"])
def test_dashboard_renders_for_every_role(role, request, client_for, bundles):
    user = request.getfixturevalue(role)
    make_claim("SAE3YULR0Y", status=ClaimStatus.NEEDS_REVIEW, reason=ClaimReason.POSSIBLE_TYPO)
    response = client_for(user).get(reverse("admin:index"))
    assert response.status_code == 200
    body = response.content.decode()
    assert ("Find anything" in body) == (role != "manager")  # a manager may search nothing it finds
    if role in ("agent", "superuser"):
        assert "Claims needing review" in body
    if role == "manager":
        assert "Claims needing review" not in body
        assert "Active bundles" in body


def test_dashboard_query_count_does_not_grow_with_rows(
    superuser, client_for, bundles, django_assert_max_num_queries
):
    client = client_for(superuser)
    seed(bundles, 3)
    with django_assert_max_num_queries(40) as small:
        assert client.get(reverse("admin:index")).status_code == 200
    seed_more = 30
    for i in range(seed_more):
        make_order(bundles["weekly-15gb"], channel=Channel.TILL, phone=f"2547110000{i:02d}")
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(reverse("admin:index")).status_code == 200


def test_find_anything_by_code_reference_and_phone(bundles, agent, client_for):
    order = make_order(bundles["daily-2gb"], mpesa_receipt="SAE3YULR0Y", phone="254712345678")
    make_claim("TCG3YADR1X", sender="254712345678")
    make_receipt("TCG3YADR1X")
    by_code = selectors.find_anything("sae3 yulr0y")
    assert by_code["orders"] == [order]
    by_ref = selectors.find_anything(order.reference.lower())
    assert by_ref["orders"] == [order]
    by_phone = selectors.find_anything("0712 345 678")
    assert by_phone["msisdn"] == "254712345678"
    assert by_phone["orders"] == [order] and len(by_phone["claims"]) == 1
    receipt_hit = selectors.find_anything("TCG3YADR1X")
    assert len(receipt_hit["receipts"]) == 1 and len(receipt_hit["claims"]) == 1
    response = client_for(agent).get(reverse("console_find"), {"q": "+254 712 345 678"})
    assert response.status_code == 200
    assert order.reference in response.content.decode()


def test_customer_timeline_orders_events_newest_first(bundles, agent, client_for):
    now = timezone.now()
    make_order(bundles["daily-2gb"], phone="254712345678", mpesa_receipt="SAE3YULR0Y")
    make_claim("TCG3YADR1X", sender="254712345678", at=now - dt.timedelta(hours=2))
    make_receipt("TCG3YADR1X", paid_at=now - dt.timedelta(hours=3))
    events = selectors.customer_timeline("254712345678")
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "order" and "claim" in kinds and "receipt" in kinds and "message" in kinds
    assert [e["at"] for e in events] == sorted((e["at"] for e in events), reverse=True)
    response = client_for(agent).get(reverse("console_customer", args=["0712345678"]))
    assert response.status_code == 302
    assert response["Location"].endswith("/254712345678/")


def test_find_requires_staff(client):
    response = client.get(reverse("console_find"), {"q": "SAE3YULR0Y"})
    assert response.status_code == 302
    assert "/login/" in response["Location"]
