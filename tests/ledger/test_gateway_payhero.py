"""PayHero v2 client: payments, transaction-status and callbacks, against the doc's samples."""

import base64
import json
from datetime import UTC, datetime, timedelta
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


def flat(**overrides) -> dict:
    """The flat success sample with its transaction_date moved to now (the sample's date is old)."""
    when = datetime.now(UTC).replace(microsecond=0)
    return {
        **load("payhero_africa_callback.json"),
        "transaction_date": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        **overrides,
    }


def encode(body: dict) -> bytes:
    return json.dumps(body).encode()


def test_callback_payhero_africa_flat_shape():
    body = flat()
    result = parse_payhero_callback(encode(body))
    assert result.status == "success"
    assert result.external_reference == "test_ext"
    assert result.gateway_reference == "UFD004453187.iI"
    assert result.receipt == "UFU51A2XO2"
    assert result.amount == Decimal("1")
    assert result.paid_at == datetime.fromisoformat(body["transaction_date"].replace("Z", "+00:00"))
    assert result.result_code is None
    assert result.raw == body


def test_flat_sample_as_published_is_refused_for_its_old_date():
    with pytest.raises(CallbackParseError, match="transaction_date .* more than 3 days ago"):
        parse_payhero_callback(raw("payhero_africa_callback.json"))


def test_flat_sample_at_its_own_time():
    now = datetime(2026, 6, 30, 1, 0, tzinfo=UTC)
    result = parse_payhero_callback(raw("payhero_africa_callback.json"), now=now)
    assert result.paid_at == datetime(2026, 6, 30, 0, 44, 53, tzinfo=UTC)


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
        (b'{"status": true, "response": {"ResultCode": NaN, "ExternalReference": "x"}}', "not valid JSON"),
        (b'{"a": ' * 10_000 + b"1" + b"}" * 10_000, "nested too deeply"),
        (b'{"status": true, "response": {"ResultCode": 0.5, "ExternalReference": "x"}}', "ResultCode"),
        (b'{"status": true, "response": {"ResultCode": true, "ExternalReference": "x"}}', "ResultCode"),
        (b'{"status": true, "response": {"ResultCode": [0], "ExternalReference": "x"}}', "ResultCode"),
        (b'{"status": true, "response": {"ResultCode": "abc", "ExternalReference": "x"}}', "ResultCode"),
        (
            b'{"status": true, "response": {"ResultCode": 1, "ExternalReference": "x\\u0000"}}',
            "ExternalReference",
        ),
        (b'{"status": true, "response": {"ResultCode": 1, "CheckoutRequestID": ["x"]}}', "CheckoutRequestID"),
        (b'{"status": "failed", "reference": "r\\u0000"}', "reference"),
        (b'{"status": "failed", "external_reference": "' + b"x" * 65 + b'"}', "external_reference"),
    ],
)
def test_malformed_callbacks(body, expected):
    with pytest.raises(CallbackParseError) as exc:
        parse_payhero_callback(body)
    assert expected in exc.value.message


# -- strict success callbacks ------------------------------------------------------------------
def nested(**response_overrides) -> dict:
    body = load("callback_success.json")
    body["response"].update(response_overrides)
    return body


def test_nested_success_has_no_date_so_no_window_applies():
    # The nested sample carries no transaction time; it is accepted as is (the status query decides).
    assert parse_payhero_callback(raw("callback_success.json")).paid_at is None


@pytest.mark.parametrize(
    "amount", ["abc", None, "", [10], {}, True, -10, 0, 10.004, 1e20, "1e3", 250000, "NaN"]
)
def test_nested_success_with_malformed_amount_is_refused(amount):
    with pytest.raises(CallbackParseError, match="response.Amount"):
        parse_payhero_callback(encode(nested(Amount=amount)))


def test_nested_success_without_amount_is_refused():
    body = nested()
    del body["response"]["Amount"]
    with pytest.raises(CallbackParseError, match="response.Amount is missing"):
        parse_payhero_callback(encode(body))


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nested_success_with_non_finite_amount_is_refused(literal):
    body = encode(nested(Amount="__X__")).replace(b'"__X__"', literal.encode())
    with pytest.raises(CallbackParseError, match="not valid JSON"):
        parse_payhero_callback(body)


@pytest.mark.parametrize("amount", [10, 10.0, "10", "10.50", 249999.99])
def test_nested_success_amounts(amount):
    result = parse_payhero_callback(encode(nested(Amount=amount)))
    assert result.amount == Decimal(str(amount)).quantize(Decimal("0.01"))


@pytest.mark.parametrize(
    "receipt",
    [None, "", "SAE3YULR0", "E8UWT7CLU!", "6b71cb8b-638d-4b6e-9c7c-b0334a641e3a", "SAE3YULR0\u0000", 1],
)
def test_nested_success_with_malformed_receipt_is_refused(receipt):
    with pytest.raises(CallbackParseError, match="MpesaReceiptNumber"):
        parse_payhero_callback(encode(nested(MpesaReceiptNumber=receipt)))


def test_nested_success_receipt_case_is_normalised():
    assert parse_payhero_callback(encode(nested(MpesaReceiptNumber="sae3yulr0y"))).receipt == "SAE3YULR0Y"


def test_nested_success_with_status_false_is_refused():
    body = nested()
    body["status"] = False
    with pytest.raises(CallbackParseError, match="status false"):
        parse_payhero_callback(encode(body))


@pytest.mark.parametrize("phone", ["abc", "+2547090998761234567", ["+254709099876"]])
def test_nested_success_with_unreadable_phone_is_refused(phone):
    with pytest.raises(CallbackParseError, match="response.Phone"):
        parse_payhero_callback(encode(nested(Phone=phone)))


def test_nested_failure_is_read_leniently():
    body = load("callback_failure.json")
    body["response"].update(Amount="abc", MpesaReceiptNumber="nope", Phone="x" * 50)
    result = parse_payhero_callback(encode(body))
    assert result.status == "failed"
    assert (result.amount, result.receipt, result.phone) == (None, None, None)


def test_nested_nul_in_free_text_is_removed():
    body = nested(ResultDesc="processed\u0000 successfully", Status="Succ\u0000ess")
    result = parse_payhero_callback(encode(body))
    assert result.result_desc == "processed successfully"
    assert "\\u0000" not in json.dumps(result.raw)


@pytest.mark.parametrize("amount", ["abc", None, 0, -1, 1.001, 250000, [1]])
def test_flat_success_with_malformed_amount_is_refused(amount):
    with pytest.raises(CallbackParseError, match="amount"):
        parse_payhero_callback(encode(flat(amount=amount)))


@pytest.mark.parametrize("receipt", [None, "", "UFD004453187.iI", "ufu51a2xo", "1FU51A2XO2"])
def test_flat_success_needs_an_mpesa_receipt(receipt):
    with pytest.raises(CallbackParseError, match="provider_reference"):
        parse_payhero_callback(encode(flat(provider_reference=receipt)))


@pytest.mark.parametrize(
    "when",
    [
        "yesterday",
        "2026-13-01T00:00:00Z",
        20261130,
        ["2026-06-30T00:44:53Z"],
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-05:00",
        "9999-12-31T23:59:59Z",
    ],
)
def test_flat_success_with_unreadable_or_absurd_date_is_refused(when):
    with pytest.raises(CallbackParseError, match="transaction_date"):
        parse_payhero_callback(encode(flat(transaction_date=when)))


@pytest.mark.parametrize("offset", [timedelta(days=4), timedelta(minutes=-10)], ids=["old", "future"])
def test_flat_success_outside_the_time_window_is_refused(offset):
    when = (datetime.now(UTC) - offset).strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(CallbackParseError, match="transaction_date"):
        parse_payhero_callback(encode(flat(transaction_date=when)))


def test_flat_success_without_date_is_accepted():
    body = flat()
    del body["transaction_date"]
    assert parse_payhero_callback(encode(body)).paid_at is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"ResultCode": 1032}, "ResultCode 1032"),
        ({"result_code": "1"}, "ResultCode 1"),
        ({"ResultCode": "abc"}, "ResultCode"),
        ({"success": False}, "success false"),
        ({"currency": "USD"}, "currency"),
        ({"currency": ["KES"]}, "currency"),
    ],
)
def test_flat_success_that_contradicts_itself_is_refused(overrides, expected):
    with pytest.raises(CallbackParseError, match=expected):
        parse_payhero_callback(encode(flat(**overrides)))


def test_flat_garbled_status_word_is_not_success():
    result = parse_payhero_callback(encode(flat(status="succ\u0000ess")))
    assert result.status == "pending"
    body = flat(status="succ\u0000ess")
    del body["message"]
    assert parse_payhero_callback(encode(body)).result_desc == "PayHero status success"  # cleaned for display


def test_flat_success_with_code_0_and_kes():
    result = parse_payhero_callback(encode(flat(ResultCode=0, currency="kes")))
    assert (result.status, result.result_code) == ("success", "0")


def test_flat_failure_is_read_leniently():
    body = flat(status="failed", success=False, amount="abc", provider_reference="", transaction_date="nope")
    result = parse_payhero_callback(encode(body))
    assert result.status == "failed"
    assert (result.amount, result.receipt, result.paid_at) == (None, None, None)


# -- status answers are cleaned and read tolerantly ---------------------------------------------
@pytest.mark.parametrize("amount", ["abc", None, [1], -5, 0.001, "NaN"])
@responses.activate
def test_status_malformed_amount_is_none(amount):
    responses.get(STATUS_URL, json={**load("transaction_status_success.json"), "amount": amount})
    result = make_gateway().query_status(status_query())
    assert result.status == "success"
    assert result.amount is None


@responses.activate
def test_status_amount_is_read():
    responses.get(STATUS_URL, json={**load("transaction_status_success.json"), "amount": 150})
    assert make_gateway().query_status(status_query()).amount == Decimal("150.00")


@pytest.mark.parametrize(
    "receipt", ["6b71cb8b-638d-4b6e-9c7c-b0334a641e3a", "SKQ96C7K7", "SKQ96C7K7\u0000", 5, ["x"]]
)
@responses.activate
def test_status_receipt_not_of_mpesa_shape_is_none(receipt):
    body = {
        **load("transaction_status_success.json"),
        "provider_reference": receipt,
        "third_party_reference": "",
    }
    responses.get(STATUS_URL, json=body)
    result = make_gateway().query_status(status_query())
    assert result.status == "success"
    assert result.receipt is None


@responses.activate
def test_status_lowercase_receipt_is_normalised():
    body = {**load("transaction_status_success.json"), "provider_reference": "skq96c7k7h"}
    responses.get(STATUS_URL, json=body)
    assert make_gateway().query_status(status_query()).receipt == "SKQ96C7K7H"


@pytest.mark.parametrize("code", ["abc", 0.5, [0], True])
@responses.activate
def test_status_odd_result_code_is_none_not_an_error(code):
    responses.get(STATUS_URL, json={**load("transaction_status_failed.json"), "ResultCode": code})
    result = make_gateway().query_status(status_query())
    assert result.status == "failed"  # PayHero's status word decides
    assert result.result_code is None


@responses.activate
def test_status_nul_anywhere_is_removed():
    body = {
        **load("transaction_status_success.json"),
        "merchant": "Ron\u0000 Doe",
        "message": "ok\u0000",
        "status": "SUCC\u0000ESS",
        "reference": "6b71cb8b\u0000",
        "extra": [{"k\u0000": "v\u0000"}],
    }
    responses.get(STATUS_URL, json=body)
    result = make_gateway().query_status(status_query())
    assert result.status == "pending"  # a garbled status word is never read as SUCCESS
    assert result.result_desc == "ok"
    assert result.gateway_reference == "6b71cb8b-638d-4b6e-9c7c-b0334a641e3a"  # unusable: ours kept
    dumped = json.dumps(result.raw)
    assert "\\u0000" not in dumped
    assert result.raw["extra"] == [{"k": "v"}]


@pytest.mark.parametrize(
    "body", [b'{"status": "SUCCESS", "amount": NaN}', b"[" * 10_000 + b"]" * 10_000], ids=["nan", "deep"]
)
@responses.activate
def test_status_non_strict_json_is_unavailable(body):
    responses.get(STATUS_URL, body=body, content_type="application/json")
    with pytest.raises(GatewayUnavailable, match="unreadable"):
        make_gateway().query_status(status_query())


@responses.activate
def test_payment_answer_is_cleaned_and_reference_checked():
    responses.post(PAY_URL, json={**load("payment_response.json"), "status": "QUEUED\u0000"})
    accepted = make_gateway().initiate_stk(make_request())
    assert accepted.raw_response["status"] == "QUEUED"
    responses.replace(
        responses.POST, PAY_URL, json={**load("payment_response.json"), "reference": "E8\u0000UW"}
    )
    with pytest.raises(GatewayUnavailable) as exc:
        make_gateway().initiate_stk(make_request())
    assert exc.value.ambiguous is True


@responses.activate
def test_error_with_nul_gives_a_clean_gateway_error():
    responses.post(PAY_URL, status=400, json={"error_message": "bad\u0000 channel", "raw": "\u0000"})
    with pytest.raises(GatewayRejected) as exc:
        make_gateway().initiate_stk(make_request())
    assert "bad channel" in exc.value.message
    assert "\\u0000" not in json.dumps(exc.value.raw)


# -- time budget -------------------------------------------------------------------------------
class RecordingSession:
    """Records the timeouts passed to the network and fails like a hanging server."""

    def __init__(self, exc=None, response=None):
        self.exc = exc
        self.response = response
        self.timeouts = []

    def _call(self, timeout):
        self.timeouts.append(timeout)
        if self.exc:
            raise self.exc("timed out")
        return self.response

    def post(self, url, json=None, auth=None, timeout=None):
        return self._call(timeout)

    def get(self, url, params=None, auth=None, timeout=None):
        return self._call(timeout)


def test_push_timeouts_never_add_up_to_more_than_the_budget():
    session = RecordingSession(exc=requests.ReadTimeout)
    gateway = PayHeroGateway(
        PayHeroConfig(BASE, "u", "p", 911, connect_timeout=5.0, read_timeout=30.0, request_budget=25.0),
        session=session,
    )
    with pytest.raises(GatewayUnavailable) as exc:
        gateway.initiate_stk(make_request())
    assert exc.value.ambiguous is True
    ((connect, read),) = session.timeouts
    assert connect + read <= 25.0 + 1e-9
    assert (connect, read) == pytest.approx((5.0 * 25 / 35, 30.0 * 25 / 35))


def test_push_keeps_configured_timeouts_when_they_fit():
    session = RecordingSession(exc=requests.ConnectTimeout)
    gateway = PayHeroGateway(PayHeroConfig(BASE, "u", "p", 911), session=session)
    assert gateway.config.request_budget == 25.0
    with pytest.raises(GatewayUnavailable) as exc:
        gateway.initiate_stk(make_request())
    assert exc.value.ambiguous is False
    assert session.timeouts == [pytest.approx((5.0, 20.0), rel=1e-3)]


def test_status_retries_stop_at_the_budget():
    now = [0.0]

    class Hanging(RecordingSession):
        def _call(self, timeout):
            self.timeouts.append(timeout)
            now[0] += timeout[0] + timeout[1]
            raise requests.ReadTimeout("timed out")

    session = Hanging()
    gateway = PayHeroGateway(PayHeroConfig(BASE, "u", "p", 911, request_budget=25.0), session=session)
    gateway._clock = lambda: now[0]
    gateway._sleep = lambda seconds: now.__setitem__(0, now[0] + seconds)
    with pytest.raises(GatewayUnavailable) as exc:
        gateway.query_status(status_query())
    assert exc.value.ambiguous is False
    assert len(session.timeouts) == 1  # the first try used the whole budget: no retry
    assert now[0] <= 25.0


def test_get_gateway_reads_the_budget(settings):
    from ledger.gateways import get_gateway

    settings.PAYHERO_API_USERNAME = "u"
    settings.PAYHERO_API_PASSWORD = "p"
    settings.PAYHERO_CHANNEL_ID = "911"
    settings.GATEWAY_REQUEST_BUDGET = 9.0
    assert get_gateway("payhero").config.request_budget == 9.0
    settings.GATEWAY_REQUEST_BUDGET = 0
    with pytest.raises(GatewayError, match="GATEWAY_REQUEST_BUDGET"):
        get_gateway("payhero")
