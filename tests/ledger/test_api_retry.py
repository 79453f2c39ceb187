"""The storefront's "Send the prompt again": offered only when the first prompt can no longer be
paid (services.order_retry_allowed), and a POST that sends exactly one new prompt when it is."""

import datetime as dt
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from ledger import api
from ledger.gateways import SimulatorGateway
from ledger.models import OrderStatus, StkRequest, StkStatus
from tests.ledger.factories import OrderFactory, StkRequestFactory, ledger_settings  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ledger_settings")]


def status(client, order):
    resp = client.get(f"/api/orders/{order.reference}/")
    assert resp.status_code == 200
    return resp.json()


def retry(client, order):
    return client.post(f"/api/orders/{order.reference}/retry/")


def test_status_names_the_paying_phone_with_its_middle_digits_hidden(client):
    body = status(client, OrderFactory(payer_msisdn="254712345678"))
    assert body["payer"] == "0712 *** 678"
    assert "345" not in body["payer"]


def test_no_retry_while_the_first_prompt_waits_for_the_pin(client):
    order = StkRequestFactory(status=StkStatus.QUEUED).order
    body = status(client, order)
    assert body["status"] == "pending_payment" and body["retry_allowed"] is False
    assert body["retry_url"] == f"/api/orders/{order.reference}/retry/"


def test_no_retry_while_an_unanswered_send_may_still_reach_the_phone(client, settings):
    settings.STK_PROMPT_LIFETIME = 120
    order = StkRequestFactory(status=StkStatus.UNKNOWN, checkout_request_id=None, gateway_reference="").order
    assert status(client, order)["retry_allowed"] is False


def test_retry_offered_once_the_gateway_says_the_prompt_failed(client):
    order = OrderFactory(status=OrderStatus.FAILED, status_reason="Request cancelled by user")
    StkRequestFactory(order=order, status=StkStatus.FAILED, result_code="1032")
    body = status(client, order)
    assert body["status"] == "failed" and body["retry_allowed"] is True


def test_a_refused_retry_is_a_409_and_sends_nothing(client):
    order = StkRequestFactory(status=StkStatus.QUEUED).order
    with mock.patch.object(SimulatorGateway, "initiate_stk") as send:
        resp = retry(client, order)
    assert resp.status_code == 409
    assert resp.json()["error"] == api.RETRY_NOT_YET
    send.assert_not_called()
    assert StkRequest.objects.filter(order=order).count() == 1


def test_a_paid_order_is_never_sent_again(client):
    order = OrderFactory(status=OrderStatus.PAID)
    StkRequestFactory(order=order, status=StkStatus.SUCCESS)
    with mock.patch.object(SimulatorGateway, "initiate_stk") as send:
        assert retry(client, order).status_code == 409
    send.assert_not_called()


def test_an_allowed_retry_sends_one_new_prompt_on_the_same_order(client):
    order = OrderFactory(status=OrderStatus.FAILED)
    StkRequestFactory(order=order, status=StkStatus.FAILED, result_code="1032")
    resp = retry(client, order)
    assert resp.status_code == 201
    body = resp.json()
    assert body["reference"] == order.reference and body["status"] == "pending_payment"
    assert body["poll_url"] == f"/api/orders/{order.reference}/"
    prompts = StkRequest.objects.filter(order=order).order_by("pk")
    assert prompts.count() == 2 and prompts.last().status == StkStatus.QUEUED
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT
    # The new prompt now waits for its PIN: a second click is refused.
    with mock.patch.object(SimulatorGateway, "initiate_stk") as send:
        assert retry(client, order).status_code == 409
    send.assert_not_called()


def test_an_unanswered_send_past_its_lifetime_may_be_sent_again(client, settings):
    settings.STK_PROMPT_LIFETIME = 120
    stk = StkRequestFactory(status=StkStatus.UNKNOWN, checkout_request_id=None, gateway_reference="")
    StkRequest.objects.filter(pk=stk.pk).update(created_at=timezone.now() - dt.timedelta(seconds=121))
    assert status(client, stk.order)["retry_allowed"] is True
    assert retry(client, stk.order).status_code == 201
    assert StkRequest.objects.filter(order=stk.order).count() == 2


def test_retry_needs_the_csrf_token_and_a_post():
    order = OrderFactory(status=OrderStatus.FAILED)
    StkRequestFactory(order=order, status=StkStatus.FAILED)
    strict = Client(enforce_csrf_checks=True)
    with mock.patch.object(SimulatorGateway, "initiate_stk") as send:
        assert strict.post(f"/api/orders/{order.reference}/retry/").status_code == 403
        assert strict.get(f"/api/orders/{order.reference}/retry/").status_code == 405
    send.assert_not_called()


def test_retry_is_rate_limited_like_a_push(client, settings):
    settings.STK_RATE_LIMIT = "1/m"
    order = OrderFactory(status=OrderStatus.FAILED)
    StkRequestFactory(order=order, status=StkStatus.FAILED)
    other = OrderFactory(status=OrderStatus.FAILED, payer_msisdn="254722000111")
    StkRequestFactory(order=other, status=StkStatus.FAILED)
    assert retry(client, order).status_code == 201
    with mock.patch.object(SimulatorGateway, "initiate_stk") as send:
        assert retry(client, other).status_code == 429  # same client, over the limit
    send.assert_not_called()


def test_retry_of_an_unknown_reference_is_a_404(client):
    assert client.post("/api/orders/TXN-NOPE2345/retry/").status_code == 404
