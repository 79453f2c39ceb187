"""PayHero v2 client: payments, transaction-status and callbacks, against the doc's samples."""

import base64
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import responses
from responses import matchers

from ledger.gateways import (
    CallbackParseError,
    GatewayError,
    GatewayRejected,
    GatewayUnavailable,
    PayHeroConfig,
    PayHeroGateway,
    StatusQuery,
    StkPushRequest,
)
from ledger.gateways.payhero import parse_payhero_callback, to_local_phone

DATA = Path(__file__).resolve().parent.parent / "data" / "payhero"
BASE = "https://backend.payhero.co.ke/api/v2"
PAY_URL = f"{BASE}/payments"
STATUS_URL = f"{BASE}/transaction-status"
AUTH = "Basic " + base64.b64encode(b"fake-api-user:fake-api-pass").decode()


def raw(name: str) -> bytes:
    return (DATA / name).read_bytes()


def load(name: str) -> dict:
    return json.loads(raw(name))


def make_gateway(**overrides) -> PayHeroGateway:
    values = {
        "base_url": BASE + "/",
        "username": "fake-api-user",
        "password": "fake-api-pass",
        "channel_id": 911,
        "connect_timeout": 4.0,
        "read_timeout": 18.0,
    }
    values.update(overrides)
    return PayHeroGateway(PayHeroConfig(**values))


def make_request(**overrides) -> StkPushRequest:
    values = {
        "order_reference": "INV-009",
        "amount": 10,
        "phone": "254709099876",
        "account_reference": "INV-009",
        "description": "Data bundle",
        "callback_url": "https://tillbook.example/api/callbacks/payhero/tok",
    }
    values.update(overrides)
    return StkPushRequest(**values)


def status_query(reference="6b71cb8b-638d-4b6e-9c7c-b0334a641e3a"):
    return StatusQuery(
        checkout_request_id="ws_CO_15012024164321519708344109",
        gateway_reference=reference,
        order_reference="INV-009",
    )


# -- initiate ----------------------------------------------------------------------------------
@responses.activate
def test_initiate_sends_documented_body_with_basic_auth():
    responses.post(
        PAY_URL,
        body=raw("payment_response.json"),
        content_type="application/json",
        match=[matchers.header_matcher({"Authorization": AUTH})],
    )
    accepted = make_gateway().initiate_stk(make_request(customer_name="John Doe"))
    call = responses.calls[0]
    assert call.request.method == "POST"
    assert call.request.url == PAY_URL
    assert call.request.req_kwargs["timeout"] == (4.0, 18.0)
    body = json.loads(call.request.body)
    documented = load("payment_request.json")
    assert set(body) == set(documented)
    assert body == {
        "amount": 10,
        "phone_number": "0709099876",
        "channel_id": 911,
        "provider": "m-pesa",
        "external_reference": "INV-009",
        "customer_name": "John Doe",
        "callback_url": "https://tillbook.example/api/callbacks/payhero/tok",
    }
    assert isinstance(body["amount"], int)
    assert isinstance(body["channel_id"], int)
    assert accepted.gateway_reference == "E8UWT7CLUW"
    assert accepted.checkout_request_id == "ws_CO_15012024164321519708344109"
    assert accepted.merchant_request_id == ""
    assert accepted.raw_response == load("payment_response.json")
    assert "fake-api-pass" not in json.dumps(accepted.raw_request)


@responses.activate
def test_initiate_without_customer_name_omits_it():
    responses.post(PAY_URL, json=load("payment_response.json"))
    make_gateway().initiate_stk(make_request())
    assert "customer_name" not in json.loads(responses.calls[0].request.body)


def test_local_phone_form():
    assert to_local_phone("254709099876") == "0709099876"
    assert to_local_phone("254110000001") == "0110000001"


@responses.activate
def test_initiate_success_false_is_rejected_with_message():
    responses.post(PAY_URL, json={"success": False, "error_message": "Insufficient service wallet balance"})
    with pytest.raises(GatewayRejected, match="Insufficient service wallet balance"):
        make_gateway().initiate_stk(make_request())


@responses.activate
def test_initiate_4xx_is_rejected():
    responses.post(PAY_URL, status=400, json={"error_message": "invalid channel_id"})
    with pytest.raises(GatewayRejected) as exc:
        make_gateway().initiate_stk(make_request())
    assert "invalid channel_id" in exc.value.message
    assert exc.value.http_status == 400


@responses.activate
def test_initiate_401_names_the_setting():
    responses.post(PAY_URL, status=401, body="Unauthorized")
    with pytest.raises(GatewayRejected, match="PAYHERO_API_USERNAME"):
        make_gateway().initiate_stk(make_request())


@responses.activate
def test_initiate_503_is_not_retried():
    responses.post(PAY_URL, status=503)
    responses.post(PAY_URL, json=load("payment_response.json"))
    with pytest.raises(GatewayUnavailable) as exc:
        make_gateway().initiate_stk(make_request())
    assert len(responses.calls) == 1
    assert exc.value.ambiguous is True


@responses.activate
def test_initiate_connect_timeout_is_unavailable():
    responses.post(PAY_URL, body=requests.ConnectTimeout("connect timed out"))
    with pytest.raises(GatewayUnavailable) as exc:
        make_gateway().initiate_stk(make_request())
    assert exc.value.ambiguous is False
    assert len(responses.calls) == 1


@responses.activate
def test_initiate_read_timeout_is_ambiguous():
    responses.post(PAY_URL, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(GatewayUnavailable) as exc:
        make_gateway().initiate_stk(make_request())
    assert exc.value.ambiguous is True


@responses.activate
def test_initiate_without_reference_is_ambiguous():
    responses.post(PAY_URL, json={"success": True, "status": "QUEUED"})
    with pytest.raises(GatewayUnavailable) as exc:
        make_gateway().initiate_stk(make_request())
    assert exc.value.ambiguous is True


@responses.activate
def test_initiate_html_answer_is_unavailable():
    responses.post(PAY_URL, body="<html>maintenance</html>", content_type="text/html")
    with pytest.raises(GatewayUnavailable, match="unreadable"):
        make_gateway().initiate_stk(make_request())


# -- transaction-status ------------------------------------------------------------------------
@responses.activate
def test_status_success():
    responses.get(
        STATUS_URL,
        body=raw("transaction_status_success.json"),
        content_type="application/json",
        match=[
            matchers.query_param_matcher({"reference": "6b71cb8b-638d-4b6e-9c7c-b0334a641e3a"}),
            matchers.header_matcher({"Authorization": AUTH}),
        ],
    )
    result = make_gateway().query_status(status_query())
    call = responses.calls[0]
    assert call.request.method == "GET"
    assert call.request.req_kwargs["timeout"] == (4.0, 18.0)
    assert result.status == "success"
    assert result.receipt == "SKQ96C7K7H"
    assert result.gateway_reference == "6b71cb8b-638d-4b6e-9c7c-b0334a641e3a"
    assert result.receipt != result.gateway_reference
    assert result.paid_at == datetime(2024, 11, 26, 8, 41, 14, 160604, tzinfo=UTC)
    assert result.checkout_request_id == "ws_CO_15012024164321519708344109"  # empty in the answer
    assert result.external_reference == "INV-009"
    assert result.raw == load("transaction_status_success.json")


@responses.activate
def test_status_receipt_from_third_party_reference():
    body = {**load("transaction_status_success.json"), "provider_reference": ""}
    responses.get(STATUS_URL, json=body)
    assert make_gateway().query_status(status_query()).receipt == "SKQ96C7K7H"


@responses.activate
def test_status_old_minimal_shape():
    responses.get(STATUS_URL, json=load("transaction_status_success_old.json"))
    result = make_gateway().query_status(status_query())
    assert result.status == "success"
    assert result.receipt is None


@pytest.mark.parametrize(
    ("name_or_status", "expected"),
    [
        ("transaction_status_queued.json", "pending"),
        ("transaction_status_failed.json", "failed"),
        ("PENDING", "pending"),
        ("queued", "pending"),
        ("SOMETHING_NEW", "pending"),
    ],
)
@responses.activate
def test_status_mapping(name_or_status, expected):
    if name_or_status.endswith(".json"):
        body = load(name_or_status)
    else:
        body = {**load("transaction_status_queued.json"), "status": name_or_status}
    responses.get(STATUS_URL, json=body)
    result = make_gateway().query_status(status_query())
    assert result.status == expected
    assert result.receipt is None
    assert result.paid_at is None


@responses.activate
def test_status_retried_on_503_then_200():
    responses.get(STATUS_URL, status=503)
    responses.get(STATUS_URL, json=load("transaction_status_success.json"))
    assert make_gateway().query_status(status_query()).status == "success"
    assert len(responses.calls) == 2


@responses.activate
def test_status_keeps_failing_503_is_unavailable():
    responses.get(STATUS_URL, status=503)
    with pytest.raises(GatewayUnavailable) as exc:
        make_gateway().query_status(status_query())
    assert exc.value.ambiguous is False
    assert len(responses.calls) == 3  # first try + 2 retries


@responses.activate
def test_status_connect_timeout_is_unavailable():
    responses.get(STATUS_URL, body=requests.ConnectTimeout("connect timed out"))
    with pytest.raises(GatewayUnavailable):
        make_gateway().query_status(status_query())


@responses.activate
def test_status_unknown_reference_is_rejected():
    responses.get(STATUS_URL, status=404, json={"error_message": "transaction not found"})
    with pytest.raises(GatewayRejected, match="transaction not found"):
        make_gateway().query_status(status_query())


def test_status_needs_the_payhero_reference():
    with pytest.raises(GatewayError, match="no PayHero reference"):
        make_gateway().query_status(status_query(reference=None))


# -- callbacks ---------------------------------------------------------------------------------
def test_callback_success():
    result = make_gateway().parse_callback(raw("callback_success.json"))
    assert result.status == "success"
    assert result.result_code == "0"
    assert result.checkout_request_id == "ws_CO_02012026103543427709099876"
    assert result.external_reference == "INV-009"
    assert result.merchant_request_id == "3202-70921557-1"
    assert result.receipt == "SAE3YULR0Y"
    assert result.amount == Decimal("10")
    assert result.phone == "254709099876"
    assert result.paid_at is None
    assert result.raw == load("callback_success.json")


def test_callback_failure_unverified_shape():
    result = parse_payhero_callback(raw("callback_failure.json"))
    assert result.status == "failed"
    assert result.result_code == "1032"
    assert result.checkout_request_id is None
    assert result.external_reference == "..."
    assert result.receipt is None
    assert result.plain_message == "You cancelled the request"


@pytest.mark.parametrize(
    ("code", "status"),
    [(0, "success"), ("0", "success"), (1, "failed"), (1037, "failed"), (2001, "failed"), (4999, "pending")],
)
def test_callback_result_code_paths_ignore_status_text(code, status):
    body = load("callback_success.json")
    body["response"]["ResultCode"] = code  # Status text stays "Success": ResultCode decides
    assert parse_payhero_callback(json.dumps(body).encode()).status == status


def test_callback_payhero_africa_flat_shape():
    result = parse_payhero_callback(raw("payhero_africa_callback.json"))
    assert result.status == "success"
    assert result.external_reference == "test_ext"
    assert result.gateway_reference == "UFD004453187.iI"
    assert result.receipt == "UFU51A2XO2"
    assert result.amount == Decimal("1")
    assert result.paid_at == datetime(2026, 6, 30, 0, 44, 53, tzinfo=UTC)
    assert result.result_code is None


@pytest.mark.parametrize(("flat_status", "expected"), [("failed", "failed"), ("pending", "pending")])
def test_callback_flat_shape_other_statuses(flat_status, expected):
    body = {**load("payhero_africa_callback.json"), "status": flat_status, "success": False}
    assert parse_payhero_callback(json.dumps(body).encode()).status == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"\x80\x81garbage", "not UTF-8"),
        (b"not json at all", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'{"status": true, "response": "ok"}', "'response' must be an object"),
        (b'{"status": true, "response": {"CheckoutRequestID": "ws_CO_1"}}', "response.ResultCode"),
        (
            b'{"status": true, "response": {"ResultCode": 0}}',
            "CheckoutRequestID and response.ExternalReference",
        ),
        (b'{"success": true}', "neither a 'response' object nor a flat 'status'"),
        (b'{"status": "success", "amount": 1}', "external_reference and reference"),
    ],
)
def test_malformed_callbacks(body, expected):
    with pytest.raises(CallbackParseError) as exc:
        parse_payhero_callback(body)
    assert expected in exc.value.message
