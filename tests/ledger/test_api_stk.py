"""POST /api/stk-push/ and GET /api/orders/<reference>/: the storefront's contract."""

import json
from decimal import Decimal

import pytest
import responses
from django.urls import reverse

from ledger import api
from ledger.models import Order, OrderStatus, StkRequest, StkStatus
from tests.ledger.factories import BundleFactory, OrderFactory, StkRequestFactory, ledger_settings  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ledger_settings")]
URL = "/api/stk-push/"


def post(client, body, **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", **extra)


def test_url_names_match_the_contract():
    assert reverse("ledger:stk_push") == URL
    assert reverse("ledger:order_status", kwargs={"reference": "TXN-ABCDEFGH"}) == "/api/orders/TXN-ABCDEFGH/"


def test_push_creates_an_order_at_the_catalogue_price_and_ignores_a_client_amount(client):
    bundle = BundleFactory(slug="daily-2gb", name="Daily 2GB", price=Decimal("150"))
    resp = post(client, {"phone_number": "0712 345 678", "bundle": "daily-2gb", "amount": 1, "price": 1})
    assert resp.status_code == 201, resp.content
    body = resp.json()
    order = Order.objects.get(reference=body["reference"])
    assert body == {
        "reference": order.reference,
        "status": "pending_payment",
        "amount": "150.00",
        "bundle": "Daily 2GB",
        "poll_url": f"/api/orders/{order.reference}/",
    }
    assert order.price == Decimal("150.00") and order.bundle == bundle
    assert order.payer_msisdn == order.recipient_msisdn == "254712345678"
    assert StkRequest.objects.get(order=order).amount == Decimal("150.00")


def test_push_takes_a_bundle_id_and_a_recipient(client):
    bundle = BundleFactory()
    resp = post(
        client, {"phone_number": "+254712345678", "recipient_phone": "0110123456", "bundle": bundle.pk}
    )
    assert resp.status_code == 201
    order = Order.objects.get()
    assert order.recipient_msisdn == "254110123456"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not json", None),
        ("[1, 2]", None),
        ({"bundle": "x"}, "phone_number"),
        ({"phone_number": "", "bundle": "x"}, "phone_number"),
        ({"phone_number": "12345", "bundle": "x"}, "phone_number"),
        ({"phone_number": "0712345678", "recipient_phone": "0201234567", "bundle": "x"}, "recipient_phone"),
        ({"phone_number": "0712345678", "recipient_phone": ["x"], "bundle": "x"}, "recipient_phone"),
        ({"phone_number": "0712345678"}, "bundle"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(client, body, field):
    resp = post(client, body)
    assert resp.status_code == 400
    assert resp.json()["field"] == field
    assert resp.json()["error"]
    assert Order.objects.count() == 0


@pytest.mark.parametrize("bundle", ["no-such-bundle", 999999])
def test_unknown_bundle_is_a_404(client, bundle):
    resp = post(client, {"phone_number": "0712345678", "bundle": bundle})
    assert resp.status_code == 404
    assert resp.json() == {"error": api.BUNDLE_NOT_FOUND, "field": "bundle"}


def test_retired_bundle_is_a_404(client):
    BundleFactory(slug="old", active=False)
    assert post(client, {"phone_number": "0712345678", "bundle": "old"}).status_code == 404


def test_get_is_not_allowed(client):
    assert client.get(URL).status_code == 405


def test_rate_limit_per_payer_phone(client, settings):
    settings.STK_RATE_LIMIT = "2/m"
    settings.STK_DUPLICATE_WINDOW = 0  # identical requests on purpose: only the rate limit may stop them
    bundle = BundleFactory()
    codes = [
        post(
            client, {"phone_number": "0712345678", "bundle": bundle.slug}, REMOTE_ADDR=f"10.0.0.{i}"
        ).status_code
        for i in range(3)
    ]
    assert codes == [201, 201, 429]
    # The same phone in another form is the same payer.
    resp = post(client, {"phone_number": "+254 712 345 678", "bundle": bundle.slug}, REMOTE_ADDR="10.0.0.9")
    assert resp.status_code == 429
    assert resp.json() == {"error": api.RATE_LIMITED, "field": "phone_number"}
    assert Order.objects.count() == 2


def test_rate_limit_per_client_ip(client, settings):
    settings.STK_RATE_LIMIT = "2/m"
    bundle = BundleFactory()
    codes = [
        post(client, {"phone_number": f"07123456{i:02d}", "bundle": bundle.slug}).status_code
        for i in range(3)
    ]
    assert codes == [201, 201, 429]


@responses.activate
def test_gateway_error_is_a_502_with_a_readable_reason_and_a_failed_order(client, settings):
    settings.PAYMENT_GATEWAY = "payhero"
    settings.PAYHERO_API_USERNAME, settings.PAYHERO_API_PASSWORD, settings.PAYHERO_CHANNEL_ID = (
        "u",
        "p",
        "911",
    )
    responses.post(
        "https://backend.payhero.co.ke/api/v2/payments", json={"error_message": "Invalid channel"}, status=400
    )
    resp = post(client, {"phone_number": "0712345678", "bundle": BundleFactory().slug})
    assert resp.status_code == 502
    body = resp.json()
    assert body["field"] is None and "PayHero" in body["error"]
    order = Order.objects.get(reference=body["reference"])
    assert order.status == OrderStatus.FAILED and "PayHero" in order.status_reason


@responses.activate
def test_a_bare_5xx_on_the_push_is_an_unknown_send_and_the_order_keeps_waiting(client, settings):
    """A proxy's 503 may hide a prompt that reached the phone: never failed, never sent twice."""
    settings.PAYMENT_GATEWAY = "payhero"
    settings.PAYHERO_API_USERNAME, settings.PAYHERO_API_PASSWORD = "u", "p"
    settings.PAYHERO_CHANNEL_ID = "911"
    responses.post(
        "https://backend.payhero.co.ke/api/v2/payments", body="<html>Bad gateway</html>", status=503
    )
    resp = post(client, {"phone_number": "0712345678", "bundle": BundleFactory().slug})
    assert resp.status_code == 202
    body = resp.json()
    assert body["status"] == "pending_payment" and "may still reach the phone" in body["message"]
    order = Order.objects.get(reference=body["reference"])
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert order.stk_requests.get().status == StkStatus.UNKNOWN
    # A second tap is not a second prompt.
    again = post(client, {"phone_number": "0712345678", "bundle": order.bundle.slug})
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert len(responses.calls) == 1


def test_gateway_not_configured_is_a_502_not_a_500(client, settings):
    settings.PAYMENT_GATEWAY = "daraja"
    settings.DARAJA_CONSUMER_KEY = ""
    resp = post(client, {"phone_number": "0712345678", "bundle": BundleFactory().slug})
    assert resp.status_code == 502
    assert "DARAJA_CONSUMER_KEY" in resp.json()["error"]


@pytest.mark.parametrize(
    ("order_kwargs", "stk_kwargs", "status", "message"),
    [
        ({}, None, "pending_payment", "Check your phone and enter your M-Pesa PIN."),
        ({"status": "paid", "mpesa_receipt": "SAE3YULR0Y"}, None, "paid", "Paid"),
        (
            {"status": "failed"},
            {"status": "failed", "result_code": "1032"},
            "failed",
            "You cancelled the request",
        ),
        (
            {"status": "failed"},
            {"status": "failed", "result_code": "1"},
            "failed",
            "Insufficient M-Pesa balance",
        ),
        ({"status": "failed"}, {"status": "failed", "result_code": "1037"}, "failed", "Phone unreachable"),
    ],
)
def test_order_status_in_plain_words(client, order_kwargs, stk_kwargs, status, message):
    order = OrderFactory(**order_kwargs)
    if stk_kwargs:
        StkRequestFactory(order=order, **stk_kwargs)
    resp = client.get(f"/api/orders/{order.reference}/")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == status and body["message"] == message
    assert set(body) == {
        *("reference", "status", "status_label", "message", "amount", "bundle", "receipt"),
        *("payer", "retry_allowed", "retry_url"),
    }
    assert body["receipt"] == order_kwargs.get("mpesa_receipt")


def test_order_status_unknown_reference_is_a_404(client):
    resp = client.get("/api/orders/TXN-NOPE2345/")
    assert resp.status_code == 404
    assert resp.json()["field"] == "reference"


@pytest.mark.parametrize("reference", ["TXN-%00ABCDEF", "nonsense", "TXN-ABCDEFGHIJKL"])
def test_order_status_junk_reference_is_a_404_not_a_500(client, reference):
    assert client.get(f"/api/orders/{reference}/").status_code == 404


def test_order_status_reference_is_case_insensitive(client):
    order = OrderFactory()
    assert client.get(f"/api/orders/{order.reference.lower()}/").json()["reference"] == order.reference


# ---------------------------------------------------------------------------------------------
# A double tap on Pay sends one prompt
# ---------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_second_identical_request_within_the_window_follows_the_first_prompt(client, bundles):
    from datetime import timedelta

    from django.utils import timezone

    body = {"phone_number": "0712 345 678", "bundle": "daily-2gb"}
    first = client.post("/api/stk-push/", body, content_type="application/json")
    second = client.post("/api/stk-push/", body, content_type="application/json")
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["reference"] == first.json()["reference"] and second.json()["duplicate"] is True
    assert Order.objects.count() == 1 and StkRequest.objects.count() == 1

    # Outside the window it is a new purchase.
    Order.objects.filter(reference=first.json()["reference"]).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    third = client.post("/api/stk-push/", body, content_type="application/json")
    assert third.status_code == 201 and third.json()["reference"] != first.json()["reference"]


@pytest.mark.django_db
def test_another_bundle_or_recipient_is_not_a_duplicate(client, bundles):
    client.post(
        "/api/stk-push/",
        {"phone_number": "0712345678", "bundle": "daily-2gb"},
        content_type="application/json",
    )
    other_bundle = client.post(
        "/api/stk-push/",
        {"phone_number": "0712345678", "bundle": "daily-5gb"},
        content_type="application/json",
    )
    other_recipient = client.post(
        "/api/stk-push/",
        {"phone_number": "0712345678", "recipient_phone": "0722000111", "bundle": "daily-2gb"},
        content_type="application/json",
    )
    assert other_bundle.status_code == 201 and other_recipient.status_code == 201
    assert Order.objects.count() == 3
