"""Order services: create with a price snapshot, send, retry, cancel, deliver."""

import json
from decimal import Decimal

import pytest
import responses

from console.models import AuditEvent
from ledger import services
from ledger.models import JournalEntry, OrderStatus, StkRequest, StkStatus
from tests.ledger.factories import BundleFactory, OrderFactory, StkRequestFactory, ledger_settings  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ledger_settings")]


@pytest.mark.parametrize(
    "phone", ["0712345678", "0712 345 678", "+254712345678", "254712345678", "254 712 345 678", "712345678"]
)
def test_order_create_stores_phones_in_e164(phone):
    order = services.order_create(bundle=BundleFactory(), payer_msisdn=phone)
    assert order.payer_msisdn == "254712345678"
    assert order.recipient_msisdn == "254712345678"  # recipient defaults to the payer
    assert order.reference.startswith("TXN-") and len(order.reference) == 12


def test_order_create_accepts_01xx_numbers_and_a_separate_recipient():
    order = services.order_create(
        bundle=BundleFactory(), payer_msisdn="0110 123456", recipient_msisdn="0722000111"
    )
    assert order.payer_msisdn == "254110123456"
    assert order.recipient_msisdn == "254722000111"


def test_order_create_snapshots_the_price_and_later_price_changes_do_not_touch_it():
    bundle = BundleFactory(price=Decimal("150"))
    order = services.order_create(bundle=bundle, payer_msisdn="0712345678")
    bundle.price = Decimal("200")
    bundle.save()
    order.refresh_from_db()
    assert order.price == Decimal("150.00")
    assert AuditEvent.objects.filter(action="order.create", object_id=str(order.pk)).exists()


def test_order_create_refuses_a_retired_bundle():
    with pytest.raises(services.BundleNotAvailable):
        services.order_create(bundle=BundleFactory(active=False), payer_msisdn="0712345678")


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("phone_number", {"payer_msisdn": "12345"}),
        ("recipient_phone", {"payer_msisdn": "0712345678", "recipient_msisdn": "0201234567"}),
    ],
)
def test_order_create_names_the_bad_phone(field, kwargs):
    with pytest.raises(services.InvalidOrderPhone) as err:
        services.order_create(bundle=BundleFactory(), **kwargs)
    assert err.value.field == field


def test_stk_send_with_the_simulator_queues_a_prompt_with_gateway_ids(django_capture_on_commit_callbacks):
    order = OrderFactory()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        stk = services.stk_send(order=order)
    assert stk.status == StkStatus.QUEUED
    assert stk.checkout_request_id.startswith("ws_CO_")
    assert stk.amount == order.price and stk.phone == order.payer_msisdn
    # The callback token is a secret: the stored request never holds it (agents can read it).
    assert stk.raw_request["CallBackURL"] == "http://testserver/api/callbacks/daraja/***/"
    assert "test-token" not in json.dumps(stk.raw_request)
    assert stk.next_query_at is not None
    assert len(callbacks) == 1  # the simulated callback, queued only once the prompt is committed


@responses.activate
def test_stk_send_gateway_refusal_fails_the_order_with_the_reason(settings):
    settings.PAYMENT_GATEWAY = "payhero"
    settings.PAYHERO_API_USERNAME, settings.PAYHERO_API_PASSWORD, settings.PAYHERO_CHANNEL_ID = (
        "u",
        "p",
        "911",
    )
    responses.post(
        "https://backend.payhero.co.ke/api/v2/payments",
        json={"success": False, "error_message": "Insufficient service wallet balance"},
        status=400,
    )
    order = OrderFactory(gateway="payhero")
    with pytest.raises(services.StkSendFailed) as err:
        services.stk_send(order=order)
    order.refresh_from_db()
    assert order.status == OrderStatus.FAILED
    assert "Insufficient service wallet balance" in order.status_reason
    assert "Insufficient service wallet balance" in err.value.message
    assert StkRequest.objects.get(order=order).status == StkStatus.ERROR


def test_stk_send_refuses_an_order_that_is_not_pending():
    with pytest.raises(services.OrderError):
        services.stk_send(order=OrderFactory(status=OrderStatus.PAID))
    assert StkRequest.objects.count() == 0


@pytest.mark.parametrize("status", [OrderStatus.FAILED, OrderStatus.EXPIRED])
def test_retry_sends_a_new_prompt_on_the_same_order(status):
    first = StkRequestFactory(order__status=status, status=StkStatus.FAILED)
    second = services.order_retry(order=first.order)
    assert second.pk != first.pk and second.order_id == first.order_id
    first.order.refresh_from_db()
    assert first.order.status == OrderStatus.PENDING_PAYMENT and first.order.status_reason == ""


@pytest.mark.parametrize("status", [OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.CANCELLED])
def test_retry_refuses_other_statuses(status):
    order = OrderFactory(status=status)
    with pytest.raises(services.OrderNotRetryable):
        services.order_retry(order=order)
    assert StkRequest.objects.count() == 0


def test_cancel_only_a_pending_order(agent):
    order = OrderFactory()
    services.order_cancel(order=order, actor=agent, reason="customer changed mind")
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert AuditEvent.objects.get(action="order.cancel").actor == agent
    with pytest.raises(services.OrderNotCancellable):
        services.order_cancel(order=order, actor=agent)


def test_mark_delivered_books_the_sale_once_and_returns_the_whatsapp_reply(agent):
    order = OrderFactory(
        status=OrderStatus.PAID,
        mpesa_receipt="SAE3YULR0Y",
        amount_paid=Decimal("150"),
        recipient_msisdn="254712345678",
    )
    reply = services.order_mark_delivered(order=order, actor=agent)
    assert (
        reply == "Your 2GB bundle for 0712 345 678 is now active. Receipt SAE3YULR0Y. - Tillbook Data Bundles"
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED and order.delivered_by == agent
    assert JournalEntry.objects.filter(kind="delivery", order=order).count() == 1
    with pytest.raises(services.OrderNotDeliverable):
        services.order_mark_delivered(order=order, actor=agent)
    assert JournalEntry.objects.filter(kind="delivery").count() == 1


def test_bulk_delivery_delivers_the_paid_and_says_why_it_skipped_the_rest(agent):
    paid = OrderFactory(status=OrderStatus.PAID, mpesa_receipt="SAE3YULR01")
    pending = OrderFactory()
    result = services.orders_mark_delivered(orders=[paid, pending], actor=agent)
    assert [o.pk for o, _ in result.delivered] == [paid.pk]
    assert result.skipped == [(pending, services.ORDER_NOT_DELIVERABLE)]
