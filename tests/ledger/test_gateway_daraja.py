"""Daraja client: OAuth caching, STK push, STK query and callback parsing, against the doc's samples."""

import base64
import json
import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import responses
from responses import matchers

from ledger.gateways import (
    CallbackParseError,
    DarajaConfig,
    DarajaGateway,
    GatewayError,
    GatewayRejected,
    GatewayUnavailable,
    StatusQuery,
    StkPushRequest,
)
from ledger.gateways import daraja as daraja_module
from ledger.gateways.base import EAT, describe_result
from ledger.gateways.daraja import REDACTED, parse_daraja_callback, stk_password

DATA = Path(__file__).resolve().parent.parent / "data" / "daraja"
BASE = "https://sandbox.safaricom.co.ke"
TOKEN_URL = f"{BASE}/oauth/v1/generate"
STK_URL = f"{BASE}/mpesa/stkpush/v1/processrequest"
QUERY_URL = f"{BASE}/mpesa/stkpushquery/v1/query"
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
DOC_TIMESTAMP = "20210628092408"


def raw(name: str) -> bytes:
    return (DATA / name).read_bytes()


def load(name: str) -> dict:
    return json.loads(raw(name))


def make_gateway(**overrides) -> DarajaGateway:
    values = {
        "base_url": BASE,
        "consumer_key": "fake-consumer-key",
        "consumer_secret": "fake-consumer-secret",
        "shortcode": "174379",
        "passkey": SANDBOX_PASSKEY,
        "transaction_type": "CustomerBuyGoodsOnline",
        "party_b": "6944804",
        "connect_timeout": 3.5,
        "read_timeout": 15.0,
    }
    token_cache = overrides.pop("token_cache", None)
    values.update(overrides)
    return DarajaGateway(DarajaConfig(**values), token_cache=token_cache)


def make_request(**overrides) -> StkPushRequest:
    values = {
        "order_reference": "TB-000123",
        "amount": 50,
        "phone": "254708374149",
        "account_reference": "TILLBOOK-TB-000123",
        "description": "Safaricom 1GB 24h",
        "callback_url": "https://tillbook.example/api/callbacks/daraja/tok",
    }
    values.update(overrides)
    return StkPushRequest(**values)


def add_token(token="c9SQxWWhmdVRlyh0zh8gZDTkubVF", expires_in=3599, **kwargs):
    return responses.get(TOKEN_URL, json={"access_token": token, "expires_in": expires_in}, **kwargs)


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def fixed_timestamp(monkeypatch):
    monkeypatch.setattr(daraja_module, "daraja_timestamp", lambda now=None: DOC_TIMESTAMP)
    return DOC_TIMESTAMP


# -- password ----------------------------------------------------------------------------------
def test_password_matches_the_doc_sample():
    doc = load("stk_push_request.json")
    assert stk_password("174379", SANDBOX_PASSKEY, "20210628092408") == doc["Password"]
    assert base64.b64decode(doc["Password"]).decode() == "174379" + SANDBOX_PASSKEY + "20210628092408"


# -- OAuth -------------------------------------------------------------------------------------
@responses.activate
def test_token_request_is_basic_auth_get_with_timeouts():
    responses.get(TOKEN_URL, body=raw("token.json"), content_type="application/json")
    gateway = make_gateway()
    assert gateway.get_access_token() == "c9SQxWWhmdVRlyh0zh8gZDTkubVF"
    call = responses.calls[0]
    assert call.request.method == "GET"
    assert call.request.url == f"{TOKEN_URL}?grant_type=client_credentials"
    assert call.request.headers["Authorization"] == basic("fake-consumer-key", "fake-consumer-secret")
    assert call.request.req_kwargs["timeout"] == (3.5, 15.0)


@responses.activate
def test_token_is_cached_and_string_expires_in_accepted():
    add_token(expires_in="3599")
    gateway = make_gateway()
    assert gateway.get_access_token() == gateway.get_access_token()
    assert len(responses.calls) == 1


@responses.activate
def test_token_refetched_60_seconds_before_expiry():
    add_token(token="first", expires_in=3599)
    add_token(token="second", expires_in=3599)
    gateway = make_gateway()
    now = [1000.0]
    gateway._clock = lambda: now[0]
    assert gateway.get_access_token() == "first"
    now[0] += 3599 - 61
    assert gateway.get_access_token() == "first"
    now[0] += 2  # now inside the last 60 seconds
    assert gateway.get_access_token() == "second"
    assert len(responses.calls) == 2


@responses.activate
def test_concurrent_callers_fetch_the_token_once():
    barrier = threading.Barrier(8)

    def slow_token(request):
        threading.Event().wait(0.2)  # keep the fetch in flight while the other threads arrive
        return 200, {}, json.dumps({"access_token": "shared-token", "expires_in": "3599"})

    responses.add_callback(responses.GET, TOKEN_URL, callback=slow_token)
    gateway = make_gateway()
    results, errors = [], []

    def worker():
        try:
            barrier.wait()
            results.append(gateway.get_access_token())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert not errors
    assert results == ["shared-token"] * 8
    assert len(responses.calls) == 1


@responses.activate
def test_token_shared_between_gateways_through_cache():
    class DictCache(dict):
        def set(self, key, value, timeout=None):
            self[key] = value

        def delete(self, key):
            self.pop(key, None)

    cache = DictCache()
    add_token(token="from-cache")
    assert make_gateway(token_cache=cache).get_access_token() == "from-cache"
    assert make_gateway(token_cache=cache).get_access_token() == "from-cache"
    assert len(responses.calls) == 1


@responses.activate
def test_broken_token_cache_falls_back_to_direct_fetch():
    class BrokenCache:
        def get(self, key):
            raise RuntimeError("cache table missing")

        def set(self, key, value, timeout=None):
            raise RuntimeError("cache table missing")

        def delete(self, key):
            raise RuntimeError("cache table missing")

    add_token(token="direct")
    gateway = make_gateway(token_cache=BrokenCache())
    assert gateway.get_access_token() == "direct"
    gateway.invalidate_token("direct")


@responses.activate
def test_bad_consumer_credentials_are_rejected():
    responses.get(
        TOKEN_URL, status=400, json={"errorCode": "400.008.01", "errorMessage": "Invalid Authentication"}
    )
    with pytest.raises(GatewayRejected) as exc:
        make_gateway().get_access_token()
    assert "DARAJA_CONSUMER_KEY" in exc.value.message
    assert "Invalid Authentication" in exc.value.message


@responses.activate
def test_token_answer_without_access_token():
    responses.get(TOKEN_URL, json={"expires_in": "3599"})
    with pytest.raises(GatewayUnavailable, match="access_token"):
        make_gateway().get_access_token()


@responses.activate
def test_token_get_retried_on_503():
    responses.get(TOKEN_URL, status=503)
    add_token(token="after-retry")
    assert make_gateway().get_access_token() == "after-retry"
    assert len(responses.calls) == 2


# -- STK push ----------------------------------------------------------------------------------
@responses.activate
def test_initiate_stk_sends_the_documented_request(fixed_timestamp):
    add_token()
    doc_password = load("stk_push_request.json")["Password"]
    responses.post(
        STK_URL,
        body=raw("stk_push_response.json"),
        content_type="application/json",
        match=[matchers.header_matcher({"Authorization": "Bearer c9SQxWWhmdVRlyh0zh8gZDTkubVF"})],
    )
    accepted = make_gateway().initiate_stk(make_request())

    stk_call = responses.calls[1]
    assert stk_call.request.method == "POST"
    assert stk_call.request.url == STK_URL
    assert stk_call.request.req_kwargs["timeout"] == (3.5, 15.0)
    body = json.loads(stk_call.request.body)
    assert body == {
        "BusinessShortCode": "174379",
        "Password": doc_password,
        "Timestamp": "20210628092408",
        "TransactionType": "CustomerBuyGoodsOnline",
        "Amount": 50,
        "PartyA": "254708374149",
        "PartyB": "6944804",
        "PhoneNumber": "254708374149",
        "CallBackURL": "https://tillbook.example/api/callbacks/daraja/tok",
        "AccountReference": "TILLBOOK-TB-",
        "TransactionDesc": "Safaricom 1GB",
    }
    assert isinstance(body["Amount"], int)

    assert accepted.checkout_request_id == "ws_CO_1007202409152617172396192"
    assert accepted.merchant_request_id == "2654-4b64-97ff-b827b542881d3130"
    assert accepted.gateway_reference == "ws_CO_1007202409152617172396192"
    assert accepted.raw_request["Password"] == REDACTED
    assert doc_password not in json.dumps(accepted.raw_request)
    assert SANDBOX_PASSKEY not in json.dumps(accepted.raw_request)
    assert accepted.raw_response == load("stk_push_response.json")


@responses.activate
def test_initiate_stk_timestamp_and_password_agree():
    add_token()
    responses.post(STK_URL, json=load("stk_push_response.json"))
    make_gateway().initiate_stk(make_request())
    body = json.loads(responses.calls[1].request.body)
    assert len(body["Timestamp"]) == 14
    assert base64.b64decode(body["Password"]).decode() == "174379" + SANDBOX_PASSKEY + body["Timestamp"]
    stamp = datetime.strptime(body["Timestamp"], "%Y%m%d%H%M%S").replace(tzinfo=EAT)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 120  # Nairobi time, not UTC


@responses.activate
def test_paybill_party_b_defaults_to_shortcode():
    add_token()
    responses.post(STK_URL, json=load("stk_push_response.json"))
    make_gateway(transaction_type="CustomerPayBillOnline", party_b="").initiate_stk(make_request())
    body = json.loads(responses.calls[1].request.body)
    assert body["TransactionType"] == "CustomerPayBillOnline"
    assert body["PartyB"] == "174379"


@responses.activate
def test_initiate_stk_error_body_is_rejected_with_the_gateway_message():
    add_token()
    responses.post(STK_URL, status=400, body=raw("stk_push_error.json"), content_type="application/json")
    with pytest.raises(GatewayRejected) as exc:
        make_gateway().initiate_stk(make_request())
    assert "Bad Request - Invalid BusinessShortCode" in exc.value.message
    assert exc.value.code == "400.002.02"
    assert exc.value.http_status == 400


@responses.activate
def test_initiate_stk_nonzero_response_code_is_rejected():
    add_token()
    responses.post(
        STK_URL,
        json={
            "MerchantRequestID": "1",
            "CheckoutRequestID": "ws_CO_1",
            "ResponseCode": "1",
            "ResponseDescription": "Rejected",
        },
    )
    with pytest.raises(GatewayRejected, match="Rejected"):
        make_gateway().initiate_stk(make_request())


@responses.activate
def test_initiate_stk_503_is_not_retried():
    add_token()
    responses.post(STK_URL, status=503, body="Service Unavailable")
    responses.post(STK_URL, json=load("stk_push_response.json"))
    with pytest.raises(GatewayUnavailable) as exc:
        make_gateway().initiate_stk(make_request())
    stk_calls = [c for c in responses.calls if c.request.url == STK_URL]
    assert len(stk_calls) == 1
    assert exc.value.ambiguous is True  # a bare 5xx may hide a prompt that went out


@responses.activate
def test_initiate_stk_daraja_5xx_error_is_unavailable_not_ambiguous():
    add_token()
    responses.post(
        STK_URL,
        status=500,
        json={
            "requestId": "x",
            "errorCode": "500.003.02",
            "errorMessage": "Error Occurred: Spike Arrest Violation",
        },
    )
    with pytest.raises(GatewayUnavailable) as exc:
        make_gateway().initiate_stk(make_request())
    assert "Spike Arrest Violation" in exc.value.message
    assert exc.value.code == "500.003.02"
    assert exc.value.ambiguous is False
    assert len([c for c in responses.calls if c.request.url == STK_URL]) == 1


@responses.activate
def test_initiate_stk_connect_timeout_is_unavailable():
    add_token()
    responses.post(STK_URL, body=requests.ConnectTimeout("connect timed out"))
    with pytest.raises(GatewayUnavailable) as exc:
        make_gateway().initiate_stk(make_request())
    assert exc.value.ambiguous is False
    assert "did not answer in time" in exc.value.message
    assert len([c for c in responses.calls if c.request.url == STK_URL]) == 1


@responses.activate
def test_initiate_stk_read_timeout_is_ambiguous():
    add_token()
    responses.post(STK_URL, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(GatewayUnavailable) as exc:
        make_gateway().initiate_stk(make_request())
    assert exc.value.ambiguous is True
    assert "check the payment status" in exc.value.message


@responses.activate
def test_token_timeout_is_unavailable():
    responses.get(TOKEN_URL, body=requests.ConnectTimeout("connect timed out"))
    with pytest.raises(GatewayUnavailable):
        make_gateway().initiate_stk(make_request())


@responses.activate
def test_invalid_token_is_dropped_and_the_push_retried_once():
    add_token(token="stale-token")
    add_token(token="fresh-token")
    responses.post(
        STK_URL,
        status=404,
        json={"requestId": "r", "errorCode": "404.001.03", "errorMessage": "Invalid Access Token"},
        match=[matchers.header_matcher({"Authorization": "Bearer stale-token"})],
    )
    responses.post(
        STK_URL,
        json=load("stk_push_response.json"),
        match=[matchers.header_matcher({"Authorization": "Bearer fresh-token"})],
    )
    gateway = make_gateway()
    accepted = gateway.initiate_stk(make_request())
    assert accepted.checkout_request_id == "ws_CO_1007202409152617172396192"
    assert [c.request.method for c in responses.calls] == ["GET", "POST", "GET", "POST"]
    assert gateway.get_access_token() == "fresh-token"
    assert len(responses.calls) == 4


@responses.activate
def test_invalid_token_twice_is_rejected_without_looping():
    add_token(token="a")
    add_token(token="b")
    responses.post(
        STK_URL, status=401, json={"errorCode": "404.001.03", "errorMessage": "Invalid Access Token"}
    )
    with pytest.raises(GatewayRejected, match="Invalid Access Token"):
        make_gateway().initiate_stk(make_request())
    assert len([c for c in responses.calls if c.request.url == STK_URL]) == 2


# -- STK query ---------------------------------------------------------------------------------
def query(checkout="ws_CO_13012021093521236557"):
    return StatusQuery(checkout_request_id=checkout, gateway_reference=checkout, order_reference="TB-000123")


@responses.activate
def test_query_success(fixed_timestamp):
    add_token()
    responses.post(QUERY_URL, body=raw("query_success.json"), content_type="application/json")
    result = make_gateway().query_status(query())
    call = responses.calls[1]
    assert call.request.headers["Authorization"] == "Bearer c9SQxWWhmdVRlyh0zh8gZDTkubVF"
    assert call.request.req_kwargs["timeout"] == (3.5, 15.0)
    assert json.loads(call.request.body) == {
        "BusinessShortCode": "174379",
        "Password": load("stk_push_request.json")["Password"],
        "Timestamp": DOC_TIMESTAMP,
        "CheckoutRequestID": "ws_CO_13012021093521236557",
    }
    assert result.status == "success"
    assert result.result_code == "0"
    assert result.merchant_request_id == "22205-34066-1"
    assert result.checkout_request_id == "ws_CO_13012021093521236557"
    assert result.receipt is None  # only the callback carries the receipt
    assert result.raw == load("query_success.json")


@responses.activate
def test_query_cancelled():
    add_token()
    responses.post(QUERY_URL, json=load("query_cancelled.json"))
    result = make_gateway().query_status(query())
    assert result.status == "failed"
    assert result.result_code == "1032"
    assert result.plain_message == "You cancelled the request"


@responses.activate
def test_query_being_processed_error_is_pending():
    add_token()
    responses.post(
        QUERY_URL, status=500, body=raw("query_pending_error.json"), content_type="application/json"
    )
    result = make_gateway().query_status(query())
    assert result.status == "pending"
    assert result.result_code == "500.001.1001"
    assert result.result_desc == "The transaction is being processed"
    assert len([c for c in responses.calls if c.request.url == QUERY_URL]) == 1


@responses.activate
def test_query_still_under_processing_4999_is_pending():
    add_token()
    responses.post(
        QUERY_URL,
        json={
            **load("query_success.json"),
            "ResultCode": "4999",
            "ResultDesc": "The transaction is still under processing",
        },
    )
    assert make_gateway().query_status(query()).status == "pending"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("0", "success"),
        ("1", "failed"),
        ("17", "failed"),
        ("1019", "failed"),
        ("1032", "failed"),
        ("1037", "failed"),
        ("2001", "failed"),
        ("4999", "pending"),
        ("SFC_IC0003", "failed"),
    ],
)
@responses.activate
def test_query_result_code_paths(code, status):
    add_token()
    responses.post(QUERY_URL, json={**load("query_success.json"), "ResultCode": code})
    result = make_gateway().query_status(query())
    assert (result.status, result.result_code) == (status, code)


@responses.activate
def test_query_other_500_001_1001_is_unavailable_not_pending():
    add_token()
    responses.post(
        QUERY_URL, status=500, json={"errorCode": "500.001.1001", "errorMessage": "Wrong credentials"}
    )
    with pytest.raises(GatewayUnavailable, match="Wrong credentials"):
        make_gateway().query_status(query())


@responses.activate
def test_query_retried_on_503_then_succeeds():
    add_token()
    responses.post(QUERY_URL, status=503)
    responses.post(QUERY_URL, json=load("query_success.json"))
    assert make_gateway().query_status(query()).status == "success"
    assert len([c for c in responses.calls if c.request.url == QUERY_URL]) == 2


@responses.activate
def test_query_refreshes_invalid_token():
    add_token(token="stale")
    add_token(token="fresh")
    responses.post(QUERY_URL, status=401, body="")
    responses.post(QUERY_URL, json=load("query_success.json"))
    assert make_gateway().query_status(query()).status == "success"
    assert responses.calls[3].request.headers["Authorization"] == "Bearer fresh"


@responses.activate
def test_query_4xx_is_rejected():
    add_token()
    responses.post(
        QUERY_URL,
        status=400,
        json={"errorCode": "400.002.02", "errorMessage": "Bad Request - Invalid CheckoutRequestID"},
    )
    with pytest.raises(GatewayRejected, match="Invalid CheckoutRequestID"):
        make_gateway().query_status(query())


@responses.activate
def test_query_connect_timeout_is_unavailable():
    add_token()
    responses.post(QUERY_URL, body=requests.ConnectTimeout("connect timed out"))
    with pytest.raises(GatewayUnavailable):
        make_gateway().query_status(query())


def test_query_without_checkout_id():
    with pytest.raises(GatewayError, match="TB-000123"):
        make_gateway().query_status(StatusQuery(None, None, "TB-000123"))


# -- callbacks ---------------------------------------------------------------------------------
def test_callback_success_official_sample():
    result = make_gateway().parse_callback(raw("callback_success.json"))
    assert result.status == "success"
    assert result.result_code == "0"
    assert result.checkout_request_id == "ws_CO_191220191020363925"
    assert result.merchant_request_id == "29115-34620561-1"
    assert result.receipt == "NLJ7RT61SV"
    assert result.amount == Decimal("1.00")
    assert result.phone == "254708374149"
    assert result.paid_at == datetime(2019, 12, 19, 10, 21, 15, tzinfo=EAT)
    assert result.paid_at.astimezone(UTC) == datetime(2019, 12, 19, 7, 21, 15, tzinfo=UTC)
    assert result.external_reference is None
    assert result.raw == load("callback_success.json")


def test_callback_failure_official_sample_has_no_metadata():
    result = parse_daraja_callback(raw("callback_failure_1032.json"))
    assert result.status == "failed"
    assert result.result_code == "1032"
    assert result.checkout_request_id == "ws_CO_21072024125243250722943992"
    assert (result.receipt, result.amount, result.phone, result.paid_at) == (None, None, None, None)
    assert result.plain_message == "You cancelled the request"


def test_real_callback_with_balance_item_without_value():
    result = parse_daraja_callback(raw("callback_real_success_balance_no_value.json"))
    assert result.status == "success"
    assert result.checkout_request_id == "ws_CO_DMZ_264695293_11032019122104433"
    assert result.receipt == "NCB9FJNAIT"
    assert result.amount == Decimal("1.00")
    assert result.phone == "254719748260"
    assert result.paid_at == datetime(2019, 3, 11, 12, 21, 21, tzinfo=EAT)


@pytest.mark.parametrize(
    ("name", "code", "plain"),
    [
        ("callback_real_2001.json", "2001", "Wrong M-Pesa PIN"),
        ("callback_real_1032.json", "1032", "You cancelled the request"),
        ("callback_real_1036.json", "1036", "Phone unreachable"),
    ],
)
def test_real_failure_callbacks_with_bracket_prefixes(name, code, plain):
    result = parse_daraja_callback(raw(name))
    assert result.status == "failed"
    assert result.result_code == code
    assert result.checkout_request_id.startswith("ws_CO_DMZ_")
    assert result.result_desc.startswith("[")  # kept verbatim for audit
    assert describe_result(result.result_code, result.result_desc) == plain


def test_callback_items_looked_up_by_name_in_any_order():
    body = load("callback_success.json")
    body["Body"]["stkCallback"]["CallbackMetadata"]["Item"].reverse()
    result = parse_daraja_callback(json.dumps(body).encode())
    assert (result.receipt, result.phone) == ("NLJ7RT61SV", "254708374149")


@pytest.mark.parametrize("code", [1, 17, 1019, 1025, 1037, 2001, 2028, 9999, 4999, "SFC_IC0003"])
def test_callback_result_code_paths(code):
    body = load("callback_failure_1032.json")
    body["Body"]["stkCallback"]["ResultCode"] = code
    result = parse_daraja_callback(json.dumps(body).encode())
    assert result.result_code == str(code)
    assert result.status == ("pending" if code == 4999 else "failed")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"<html>502 Bad Gateway</html>", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "JSON object"),
        (b'"Body"', "JSON object"),
        (b"{}", "missing the Body"),
        (b'{"Body": []}', "missing the Body"),
        (b'{"Body": {}}', "Body.stkCallback"),
        (b'{"Body": {"stkCallback": {"ResultCode": 0}}}', "CheckoutRequestID"),
        (b'{"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1"}}}', "ResultCode"),
        (b'{"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1", "ResultCode": null}}}', "ResultCode"),
        (
            b'{"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1", "ResultCode": 0, '
            b'"CallbackMetadata": []}}}',
            "CallbackMetadata",
        ),
        (
            b'{"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1", "ResultCode": 0, '
            b'"CallbackMetadata": {"Item": "x"}}}}',
            "CallbackMetadata.Item",
        ),
    ],
)
def test_malformed_callbacks(body, expected):
    with pytest.raises(CallbackParseError) as exc:
        parse_daraja_callback(body)
    assert expected in exc.value.message
