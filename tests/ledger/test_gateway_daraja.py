"""Daraja client: OAuth caching, STK push, STK query and callback parsing, against the doc's samples."""

import base64
import json
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import responses
from responses import matchers

from console.kernel.clock import NAIROBI
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
from ledger.gateways.base import describe_result
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


def eat_stamp(when: datetime) -> int:
    """A Daraja TransactionDate (Nairobi YYYYMMDDHHmmss) for ``when``."""
    return int(when.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S"))


def now_eat() -> datetime:
    return datetime.now(NAIROBI).replace(microsecond=0)


def dated(name: str = "callback_success.json", when: datetime | None = None) -> dict:
    """A success sample with its (2019) TransactionDate moved to ``when`` (default: now), so the
    parser's time window accepts it. The sample files themselves stay as the formats doc has them."""
    body = load(name)
    for item in body["Body"]["stkCallback"]["CallbackMetadata"]["Item"]:
        if item["Name"] == "TransactionDate":
            item["Value"] = eat_stamp(when or now_eat())
    return body


def encode(body: dict) -> bytes:
    return json.dumps(body).encode()


def set_item(body: dict, name: str, value) -> dict:
    items = body["Body"]["stkCallback"]["CallbackMetadata"]["Item"]
    for item in items:
        if item["Name"] == name:
            item["Value"] = value
            return body
    items.append({"Name": name, "Value": value})
    return body


def drop_item(body: dict, name: str) -> dict:
    meta = body["Body"]["stkCallback"]["CallbackMetadata"]
    meta["Item"] = [item for item in meta["Item"] if item["Name"] != name]
    return body


def with_literal(body: dict, name: str, literal: str) -> bytes:
    """The body as JSON text with item ``name``'s Value written as ``literal`` verbatim (NaN, 1e400…)."""
    set_item(body, name, "__LITERAL__")
    return encode(body).replace(b'"__LITERAL__"', literal.encode())


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
    stamp = datetime.strptime(body["Timestamp"], "%Y%m%d%H%M%S").replace(tzinfo=NAIROBI)
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
    when = now_eat() - timedelta(minutes=1)
    body = dated(when=when)
    result = make_gateway().parse_callback(encode(body))
    assert result.status == "success"
    assert result.result_code == "0"
    assert result.checkout_request_id == "ws_CO_191220191020363925"
    assert result.merchant_request_id == "29115-34620561-1"
    assert result.receipt == "NLJ7RT61SV"
    assert result.amount == Decimal("1.00")
    assert result.phone == "254708374149"
    assert result.paid_at == when
    assert result.external_reference is None
    assert result.raw == body


def test_official_sample_as_published_is_refused_for_its_old_date():
    # The doc's sample is dated 2019-12-19: a success that old is a replay, not a payment.
    with pytest.raises(CallbackParseError) as exc:
        parse_daraja_callback(raw("callback_success.json"))
    assert "TransactionDate" in exc.value.message
    assert "more than 3 days ago" in exc.value.message


def test_official_sample_is_read_as_nairobi_time_on_its_own_day():
    now = datetime(2019, 12, 19, 10, 30, tzinfo=NAIROBI)
    result = parse_daraja_callback(raw("callback_success.json"), now=now)
    assert result.paid_at == datetime(2019, 12, 19, 10, 21, 15, tzinfo=NAIROBI)
    assert result.paid_at.astimezone(UTC) == datetime(2019, 12, 19, 7, 21, 15, tzinfo=UTC)
    assert result.raw == load("callback_success.json")


def test_time_window_follows_the_setting(settings):
    settings.GATEWAY_TIME_WINDOW_DAYS = 10
    body = encode(dated(when=now_eat() - timedelta(days=9)))
    assert parse_daraja_callback(body).status == "success"
    settings.GATEWAY_TIME_WINDOW_DAYS = 3
    with pytest.raises(CallbackParseError, match="more than 3 days ago"):
        parse_daraja_callback(body)


def test_callback_failure_official_sample_has_no_metadata():
    result = parse_daraja_callback(raw("callback_failure_1032.json"))
    assert result.status == "failed"
    assert result.result_code == "1032"
    assert result.checkout_request_id == "ws_CO_21072024125243250722943992"
    assert (result.receipt, result.amount, result.phone, result.paid_at) == (None, None, None, None)
    assert result.plain_message == "You cancelled the request"


def test_real_callback_with_balance_item_without_value():
    when = now_eat()
    result = parse_daraja_callback(encode(dated("callback_real_success_balance_no_value.json", when)))
    assert result.status == "success"
    assert result.checkout_request_id == "ws_CO_DMZ_264695293_11032019122104433"
    assert result.receipt == "NCB9FJNAIT"
    assert result.amount == Decimal("1.00")
    assert result.phone == "254719748260"
    assert result.paid_at == when


def test_real_callback_at_its_own_time():
    now = datetime(2019, 3, 11, 12, 25, tzinfo=NAIROBI)
    result = parse_daraja_callback(raw("callback_real_success_balance_no_value.json"), now=now)
    assert result.paid_at == datetime(2019, 3, 11, 12, 21, 21, tzinfo=NAIROBI)
    with pytest.raises(CallbackParseError, match="more than 3 days ago"):
        parse_daraja_callback(raw("callback_real_success_balance_no_value.json"))


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
    body = dated()
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


# -- strict success callbacks ------------------------------------------------------------------
def test_success_without_callback_metadata_is_refused():
    body = dated()
    del body["Body"]["stkCallback"]["CallbackMetadata"]
    with pytest.raises(CallbackParseError, match="no CallbackMetadata"):
        parse_daraja_callback(encode(body))


@pytest.mark.parametrize(
    "literal",
    [
        '"abc"',
        "[150]",
        "{}",
        "true",
        "false",
        "null",
        '""',
        "-150",
        "0",
        "0.0",
        "0.001",
        "1e20",
        '"1e3"',
        '"-5"',
        '"NaN"',
        "150.004",
        "150.999",
        "250000",
        "250000.00",
        "250001",
        "99999999999",
    ],
)
def test_success_with_malformed_amount_is_refused(literal):
    with pytest.raises(CallbackParseError) as exc:
        parse_daraja_callback(with_literal(dated(), "Amount", literal))
    assert "Amount" in exc.value.message
    assert "success callback refused" in exc.value.message


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_success_with_non_finite_amount_is_refused(literal):
    # Python's json would read these as float nan/inf; the strict loader refuses the whole body.
    with pytest.raises(CallbackParseError, match="not valid JSON"):
        parse_daraja_callback(with_literal(dated(), "Amount", literal))


def test_amount_written_with_an_exponent_is_the_number_it_means():
    assert parse_daraja_callback(with_literal(dated(), "Amount", "1.5e2")).amount == Decimal("150.00")


def test_success_without_amount_item_is_refused():
    with pytest.raises(CallbackParseError, match="Amount is missing"):
        parse_daraja_callback(encode(drop_item(dated(), "Amount")))


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("1", Decimal("1.00")),
        ("1.00", Decimal("1.00")),
        ("150.5", Decimal("150.50")),
        ("150.25", Decimal("150.25")),
        ('"150"', Decimal("150.00")),
        ('"150.00"', Decimal("150.00")),
        ("249999.99", Decimal("249999.99")),
    ],
)
def test_success_amount_is_a_two_decimal_decimal(literal, expected):
    result = parse_daraja_callback(with_literal(dated(), "Amount", literal))
    assert result.amount == expected
    assert result.amount.as_tuple().exponent == -2


def test_amount_limit_follows_max_payment_amount(settings):
    settings.MAX_PAYMENT_AMOUNT = Decimal("1000")
    with pytest.raises(CallbackParseError, match="maximum"):
        parse_daraja_callback(encode(set_item(dated(), "Amount", 1000)))
    assert parse_daraja_callback(encode(set_item(dated(), "Amount", 999))).amount == Decimal("999")


@pytest.mark.parametrize(
    "receipt",
    [
        None,
        "",
        "   ",
        "NLJ7RT61S",  # 9 characters: the pre-2015 form, not a current M-Pesa code
        "NLJ7RT61SVX",
        "1LJ7RT61SV",  # must start with a letter
        "NLJ7RT-1SV",
        "NLJ7RT61S\u0000",
        "NLJ7RT61SV\u0000",
        "NLJ7RT61Ṡ\u0056",
        1234567890,
        ["NLJ7RT61SV"],
        {"code": "NLJ7RT61SV"},
        True,
    ],
)
def test_success_with_malformed_receipt_is_refused(receipt):
    with pytest.raises(CallbackParseError, match="MpesaReceiptNumber"):
        parse_daraja_callback(encode(set_item(dated(), "MpesaReceiptNumber", receipt)))


def test_success_without_receipt_item_is_refused():
    with pytest.raises(CallbackParseError, match="MpesaReceiptNumber is missing"):
        parse_daraja_callback(encode(drop_item(dated(), "MpesaReceiptNumber")))


@pytest.mark.parametrize("receipt", ["nlj7rt61sv", " NLJ7RT61SV ", "Nlj7Rt61sV"])
def test_receipt_case_and_spaces_are_normalised(receipt):
    result = parse_daraja_callback(encode(set_item(dated(), "MpesaReceiptNumber", receipt)))
    assert result.receipt == "NLJ7RT61SV"


@pytest.mark.parametrize(
    "offset",
    [timedelta(days=3, minutes=1), timedelta(days=400), timedelta(minutes=-6), timedelta(days=-1)],
    ids=["just-over-3-days-old", "a-year-old", "6-min-in-the-future", "a-day-in-the-future"],
)
def test_success_outside_the_time_window_is_refused(offset):
    with pytest.raises(CallbackParseError, match="TransactionDate"):
        parse_daraja_callback(encode(dated(when=now_eat() - offset)))


@pytest.mark.parametrize(
    "offset",
    [timedelta(days=2, hours=23), timedelta(0), timedelta(minutes=-4)],
    ids=["almost-3-days-old", "now", "4-min-ahead-clock-skew"],
)
def test_success_inside_the_time_window_is_accepted(offset):
    when = now_eat() - offset
    assert parse_daraja_callback(encode(dated(when=when))).paid_at == when


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2019-12-19 10:21:15",
        2019121910211,  # 13 digits
        201912191021150,  # 15 digits
        20191319102115,  # month 13
        20190230102115,  # 30 February
        "20191219102175",  # second 75
        1.5,
        True,
        [20191219102115],
        {"v": 20191219102115},
        "",
        0,
        -20191219102115,
        "00010101000000",
        "99991231235959",
        10101000000,
    ],
)
def test_success_with_unreadable_or_absurd_date_is_refused(value):
    with pytest.raises(CallbackParseError, match="TransactionDate"):
        parse_daraja_callback(encode(set_item(dated(), "TransactionDate", value)))


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "1e400"])
def test_success_with_non_finite_date_is_refused(literal):
    with pytest.raises(CallbackParseError):
        parse_daraja_callback(with_literal(dated(), "TransactionDate", literal))


def test_transaction_date_as_string_or_integral_float_is_read():
    when = now_eat()
    as_text = parse_daraja_callback(encode(set_item(dated(), "TransactionDate", str(eat_stamp(when)))))
    assert as_text.paid_at == when
    as_float = parse_daraja_callback(with_literal(dated(), "TransactionDate", f"{eat_stamp(when)}.0"))
    assert as_float.paid_at == when


def test_success_without_transaction_date_has_no_paid_at():
    # The date is checked when present; a success without one is judged by the status query.
    assert parse_daraja_callback(encode(drop_item(dated(), "TransactionDate"))).paid_at is None
    no_value = dated()
    for item in no_value["Body"]["stkCallback"]["CallbackMetadata"]["Item"]:
        if item["Name"] == "TransactionDate":
            del item["Value"]
    assert parse_daraja_callback(encode(no_value)).paid_at is None


@pytest.mark.parametrize("name", ["Amount", "MpesaReceiptNumber", "TransactionDate", "PhoneNumber"])
def test_the_same_item_twice_is_refused(name):
    body = dated()
    items = body["Body"]["stkCallback"]["CallbackMetadata"]["Item"]
    items.append(dict(next(i for i in items if i["Name"] == name)))
    with pytest.raises(CallbackParseError, match="twice"):
        parse_daraja_callback(encode(body))


@pytest.mark.parametrize("phone", ["1234567890123456", "abc", [254708374149], {"n": 1}, True, "+", 1e17])
def test_success_with_unreadable_phone_is_refused(phone):
    with pytest.raises(CallbackParseError, match="PhoneNumber"):
        parse_daraja_callback(encode(set_item(dated(), "PhoneNumber", phone)))


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("+254708374149", "254708374149"),
        ("0708374149", "254708374149"),
        (254708374149.0, "254708374149"),
        ("123456789012345", "123456789012345"),
    ],
)
def test_success_phone_forms(phone, expected):
    assert parse_daraja_callback(encode(set_item(dated(), "PhoneNumber", phone))).phone == expected


def test_success_with_a_masked_phone_is_accepted_without_a_phone():
    """A masked number is no number (never its visible digits as a shorter wrong one)."""
    assert parse_daraja_callback(encode(set_item(dated(), "PhoneNumber", "2547****149"))).phone is None


def test_success_without_phone_is_accepted():
    assert parse_daraja_callback(encode(drop_item(dated(), "PhoneNumber"))).phone is None


def test_failure_with_garbage_metadata_is_read_leniently():
    body = load("callback_failure_1032.json")
    body["Body"]["stkCallback"]["CallbackMetadata"] = {
        "Item": [
            {"Name": "Amount", "Value": "abc"},
            {"Name": "MpesaReceiptNumber", "Value": "x\u0000"},
            {"Name": "TransactionDate", "Value": "yesterday"},
            {"Name": "PhoneNumber", "Value": "1" * 40},
        ]
    }
    result = parse_daraja_callback(encode(body))
    assert result.status == "failed"
    assert (result.amount, result.receipt, result.paid_at, result.phone) == (None, None, None, None)


# -- result codes and identifiers --------------------------------------------------------------
def with_code_literal(literal: str) -> bytes:
    body = dated()
    body["Body"]["stkCallback"]["ResultCode"] = "__LITERAL__"
    return encode(body).replace(b'"__LITERAL__"', literal.encode())


@pytest.mark.parametrize(
    "literal",
    [
        "0.5",
        "1e-7",
        "1e10",
        "true",
        "false",
        "[0]",
        "{}",
        '{"code": 0}',
        '"0.0"',
        '"0x0"',
        '"abc"',
        '"NaN"',
        '"Infinity"',
        '""',
        '"   "',
        '"0\\u0000"',
        "null",
    ],
)
def test_malformed_result_code_is_refused(literal):
    with pytest.raises(CallbackParseError, match="ResultCode"):
        parse_daraja_callback(with_code_literal(literal))


@pytest.mark.parametrize("literal", ["NaN", "-NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_result_code_is_refused(literal):
    with pytest.raises(CallbackParseError, match="not valid JSON"):
        parse_daraja_callback(with_code_literal(literal))


@pytest.mark.parametrize(
    ("literal", "code", "status"),
    [
        ("0", "0", "success"),
        ('"0"', "0", "success"),
        ('" 0 "', "0", "success"),
        ("0.0", "0", "success"),
        ("1032.0", "1032", "failed"),
        ('"1032"', "1032", "failed"),
        ('"SFC_IC0003"', "SFC_IC0003", "failed"),
        ("4999", "4999", "pending"),
    ],
)
def test_result_code_forms(literal, code, status):
    result = parse_daraja_callback(with_code_literal(literal))
    assert (result.result_code, result.status) == (code, status)


@pytest.mark.parametrize(
    "checkout",
    ["ws_CO_1\u0000", "ws_CO_\u00071", "ws\tCO", "x" * 65, "ws_CO_\ud800"],
    ids=["nul", "bell", "tab", "65-chars", "lone-surrogate"],
)
def test_checkout_request_id_with_control_chars_or_too_long_is_refused(checkout):
    body = dated()
    body["Body"]["stkCallback"]["CheckoutRequestID"] = checkout
    with pytest.raises(CallbackParseError, match="CheckoutRequestID"):
        parse_daraja_callback(encode(body))


@pytest.mark.parametrize("checkout", [123, ["ws_CO_1"], {"id": 1}, True, None, ""])
def test_checkout_request_id_must_be_text(checkout):
    body = load("callback_failure_1032.json")
    body["Body"]["stkCallback"]["CheckoutRequestID"] = checkout
    with pytest.raises(CallbackParseError, match="CheckoutRequestID"):
        parse_daraja_callback(encode(body))


def test_checkout_request_id_of_64_chars_is_accepted():
    body = load("callback_failure_1032.json")
    body["Body"]["stkCallback"]["CheckoutRequestID"] = "ws_CO_" + "1" * 58
    assert len(parse_daraja_callback(encode(body)).checkout_request_id) == 64


@pytest.mark.parametrize("merchant", ["1-2\u0000", "m" * 65, ["1"], {"a": 1}, 1.5, True])
def test_merchant_request_id_is_checked(merchant):
    body = load("callback_failure_1032.json")
    body["Body"]["stkCallback"]["MerchantRequestID"] = merchant
    with pytest.raises(CallbackParseError, match="MerchantRequestID"):
        parse_daraja_callback(encode(body))


def test_nul_and_control_chars_in_free_text_are_removed():
    body = dated()
    body["Body"]["stkCallback"]["ResultDesc"] = (
        "The service\u0000 request\u0007 is processed\ud800." + "x" * 500
    )
    body["Body"]["stkCallback"]["Extra"] = {"note": "a\u0000b", "list": ["c\u0000"], "k\u0000": 1}
    result = parse_daraja_callback(encode(body))
    assert result.result_desc.startswith("The service request is processed.")
    assert len(result.result_desc) <= 255
    dumped = json.dumps(result.raw)
    assert "\\u0000" not in dumped
    assert "\\u0007" not in dumped
    assert "\\ud800" not in dumped
    assert result.raw["Body"]["stkCallback"]["Extra"] == {"note": "ab", "list": ["c"], "k": 1}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"[" * 10_000 + b"]" * 10_000, "nested too deeply"),
        (b'{"Body": ' * 10_000 + b"{}" + b"}" * 10_000, "nested too deeply"),
        (
            b'{"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1", "ResultCode": 0\xed\xa0\x80}}}',
            "UTF-8",
        ),
        (b'{"a": "\xc0\xaf"}', "UTF-8"),
        (b'{"a": NaN}', "not valid JSON"),
        (b'{"a": 1e999}', "not valid JSON"),
        (b'{"a": ' + b"1" * 5000 + b"}", "not valid JSON"),
    ],
    ids=["deep-list", "deep-object", "surrogate-bytes", "overlong-utf8", "nan", "overflow", "huge-int"],
)
def test_hostile_bodies_are_parse_errors(body, expected):
    with pytest.raises(CallbackParseError) as exc:
        parse_daraja_callback(body)
    assert expected in exc.value.message


# -- status query answers are cleaned, never refused for a detail ---------------------------------
@responses.activate
def test_query_nul_in_answer_is_removed_from_desc_and_raw():
    add_token()
    responses.post(
        QUERY_URL,
        json={
            **load("query_success.json"),
            "ResultDesc": "The service request\u0000 is processed successfully.",
            "MerchantRequestID": "22205\u0000-34066-1",
            "Extra": ["\u0000"],
        },
    )
    result = make_gateway().query_status(query())
    assert result.status == "success"
    assert result.result_desc == "The service request is processed successfully."
    assert result.merchant_request_id is None  # unusable identifier: dropped, not refused
    assert "\\u0000" not in json.dumps(result.raw)


@responses.activate
def test_query_processing_error_with_nul_is_cleaned():
    add_token()
    responses.post(
        QUERY_URL,
        status=500,
        json={"errorCode": "500.001.1001", "errorMessage": "The transaction is being processed\u0000"},
    )
    result = make_gateway().query_status(query())
    assert result.status == "pending"
    assert "\x00" not in result.result_desc
    assert "\\u0000" not in json.dumps(result.raw)


@pytest.mark.parametrize("code", ["abc", [0], {"a": 0}, 0.5, True, "0.0"])
@responses.activate
def test_query_unreadable_result_code_is_unavailable_not_a_failure(code):
    add_token()
    responses.post(QUERY_URL, json={**load("query_success.json"), "ResultCode": code})
    with pytest.raises(GatewayUnavailable, match="unreadable ResultCode") as exc:
        make_gateway().query_status(query())
    assert exc.value.ambiguous is False


@pytest.mark.parametrize(
    "body",
    [b'{"ResultCode": NaN}', b'{"ResultCode": "0", "x": 1e999}', b"[" * 10_000 + b"]" * 10_000],
    ids=["nan", "overflow", "deep"],
)
@responses.activate
def test_query_non_strict_json_is_unavailable(body):
    add_token()
    responses.post(QUERY_URL, body=body, content_type="application/json")
    with pytest.raises(GatewayUnavailable, match="unreadable answer"):
        make_gateway().query_status(query())


@responses.activate
def test_error_answer_with_nul_gives_a_clean_gateway_error():
    add_token()
    responses.post(
        QUERY_URL,
        status=400,
        json={"errorCode": "400.002.02\u0000", "errorMessage": "Bad\u0000 Request\u0007", "x": ["\u0000"]},
    )
    with pytest.raises(GatewayRejected) as exc:
        make_gateway().query_status(query())
    assert "\x00" not in exc.value.message and "\x07" not in exc.value.message
    assert "Bad Request" in exc.value.message
    assert exc.value.code == "400.002.02"
    assert "\\u0000" not in json.dumps(exc.value.raw)


@responses.activate
def test_push_answer_with_unusable_checkout_id_is_ambiguous():
    add_token()
    responses.post(STK_URL, json={**load("stk_push_response.json"), "CheckoutRequestID": "ws_CO_\u00001"})
    with pytest.raises(GatewayUnavailable) as exc:
        make_gateway().initiate_stk(make_request())
    assert exc.value.ambiguous is True


@responses.activate
def test_push_answer_is_cleaned():
    add_token()
    responses.post(STK_URL, json={**load("stk_push_response.json"), "CustomerMessage": "Success\u0000"})
    accepted = make_gateway().initiate_stk(make_request())
    assert accepted.raw_response["CustomerMessage"] == "Success"


@responses.activate
def test_token_with_control_chars_is_unavailable():
    responses.get(TOKEN_URL, json={"access_token": "abc\u0000def", "expires_in": 3599})
    with pytest.raises(GatewayUnavailable, match="access_token"):
        make_gateway().get_access_token()


# -- time budget -------------------------------------------------------------------------------
class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def json_response(data, status=200) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = json.dumps(data).encode()
    resp.headers["Content-Type"] = "application/json"
    resp.encoding = "utf-8"
    return resp


class FakeSession:
    """Plays the network on a fake clock. Each scripted step is ("hang", exc_class): the call
    uses its whole connect + read timeout (the worst case) then raises; ("take", seconds, resp):
    answers after ``seconds``. Every call records (method, url, timeout, time left)."""

    def __init__(self, clock: FakeClock, budget: float, get=(), post=()):
        self.clock = clock
        self.start = clock.now
        self.budget = budget
        self.script = {"GET": list(get), "POST": list(post)}
        self.calls = []

    def _call(self, method, url, timeout):
        left = self.budget - (self.clock.now - self.start)
        self.calls.append((method, url, timeout, left))
        steps = self.script[method]
        step = steps.pop(0) if len(steps) > 1 else steps[0]
        if step[0] == "hang":
            self.clock.now += timeout[0] + timeout[1]
            raise step[1]("timed out")
        self.clock.now += step[1]
        return step[2]

    def get(self, url, params=None, auth=None, timeout=None):
        return self._call("GET", url, timeout)

    def post(self, url, json=None, headers=None, timeout=None):
        return self._call("POST", url, timeout)


def budget_gateway(session, clock, **overrides):
    values = {
        "base_url": BASE,
        "consumer_key": "k",
        "consumer_secret": "s",
        "shortcode": "174379",
        "passkey": SANDBOX_PASSKEY,
        "party_b": "6944804",
        "connect_timeout": 5.0,
        "read_timeout": 20.0,
    }
    values.update(overrides)
    gateway = DarajaGateway(DarajaConfig(**values), session=session)
    gateway._clock = clock
    gateway._sleep = clock.sleep
    return gateway


def assert_within_budget(session, budget):
    for _method, _url, timeout, left in session.calls:
        assert timeout[0] > 0 and timeout[1] > 0
        assert timeout[0] + timeout[1] <= left + 1e-9  # a call that times out still ends in time
    assert session.clock.now - session.start <= budget + 1e-9


def test_config_default_budget_is_25_seconds():
    values = {"base_url": BASE, "consumer_key": "k", "consumer_secret": "s", "shortcode": "1", "passkey": "p"}
    assert DarajaConfig(**values).request_budget == 25.0
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(GatewayError, match="GATEWAY_REQUEST_BUDGET"):
            DarajaConfig(**values, request_budget=bad)


def test_module_docstring_documents_the_budget():
    assert "25 s" in daraja_module.__doc__
    assert "30 s" in daraja_module.__doc__


@pytest.mark.parametrize(
    "exc_class", [requests.ReadTimeout, requests.ConnectTimeout, requests.ConnectionError]
)
def test_hanging_token_endpoint_stays_within_the_budget(exc_class):
    # Before: 3 tries x (5 s connect + 20 s read) = up to 75 s, and gunicorn killed the worker at 30 s.
    clock = FakeClock()
    session = FakeSession(clock, 25.0, get=[("hang", exc_class)])
    with pytest.raises(GatewayUnavailable) as exc:
        budget_gateway(session, clock).initiate_stk(make_request())
    assert exc.value.ambiguous is False  # nothing was sent
    assert all(method == "GET" for method, *_ in session.calls)  # the push never started
    assert session.calls[0][2] == (5.0, 20.0)  # the first try gets the configured timeouts
    assert_within_budget(session, 25.0)


def test_slow_token_errors_are_retried_only_while_time_is_left():
    clock = FakeClock()
    session = FakeSession(
        clock, 25.0, get=[("take", 8.0, json_response({}, 503)), ("take", 8.0, json_response({}, 503))]
    )
    with pytest.raises(GatewayUnavailable) as exc:
        budget_gateway(session, clock).initiate_stk(make_request())
    assert exc.value.ambiguous is False
    assert len(session.calls) == 3  # 8 s + 8 s + (0.6 s pause) + a last try with ~8 s left
    assert_within_budget(session, 25.0)


def test_token_fetch_that_uses_up_the_budget_never_sends_the_push():
    clock = FakeClock()
    token = json_response({"access_token": "t", "expires_in": 3599})
    session = FakeSession(clock, 25.0, get=[("take", 24.8, token)], post=[("take", 1.0, json_response({}))])
    with pytest.raises(GatewayUnavailable) as exc:
        budget_gateway(session, clock).initiate_stk(make_request())
    assert exc.value.ambiguous is False
    assert "25 s" in exc.value.message
    assert [method for method, *_ in session.calls] == ["GET"]


@pytest.mark.parametrize("exc_class", [requests.ReadTimeout, requests.ConnectionError])
def test_hanging_push_gets_only_the_time_left_and_is_ambiguous(exc_class):
    clock = FakeClock()
    token = json_response({"access_token": "t", "expires_in": 3599})
    session = FakeSession(clock, 25.0, get=[("take", 6.0, token)], post=[("hang", exc_class)])
    with pytest.raises(GatewayUnavailable) as exc:
        budget_gateway(session, clock).initiate_stk(make_request())
    assert exc.value.ambiguous is True  # the prompt may have gone out: query before pushing again
    method, _url, timeout, left = session.calls[-1]
    assert method == "POST"
    assert left == pytest.approx(19.0)
    assert timeout == pytest.approx((5.0 * 19 / 25, 20.0 * 19 / 25))
    assert len([c for c in session.calls if c[0] == "POST"]) == 1
    assert_within_budget(session, 25.0)


def test_budget_from_config_bounds_query_retries_too():
    clock = FakeClock()
    token = json_response({"access_token": "t", "expires_in": 3599})
    session = FakeSession(clock, 10.0, get=[("take", 0.5, token)], post=[("hang", requests.ReadTimeout)])
    with pytest.raises(GatewayUnavailable) as exc:
        budget_gateway(session, clock, request_budget=10.0).query_status(query())
    assert exc.value.ambiguous is False
    assert_within_budget(session, 10.0)


def test_fast_gateway_keeps_the_configured_timeouts():
    clock = FakeClock()
    token = json_response({"access_token": "t", "expires_in": 3599})
    session = FakeSession(
        clock,
        60.0,
        get=[("take", 0.2, token)],
        post=[("take", 0.3, json_response(load("stk_push_response.json")))],
    )
    accepted = budget_gateway(session, clock, request_budget=60.0).initiate_stk(make_request())
    assert accepted.checkout_request_id == "ws_CO_1007202409152617172396192"
    assert [c[2] for c in session.calls] == [(5.0, 20.0), (5.0, 20.0)]


def test_get_gateway_reads_the_budget_from_settings(settings):
    from ledger.gateways import get_gateway

    settings.DARAJA_CONSUMER_KEY = "k"
    settings.DARAJA_CONSUMER_SECRET = "s"
    settings.DARAJA_SHORTCODE = "174379"
    settings.DARAJA_PASSKEY = SANDBOX_PASSKEY
    settings.DARAJA_PARTY_B = "6944804"
    settings.GATEWAY_REQUEST_BUDGET = 12.5
    assert get_gateway("daraja").config.request_budget == 12.5
    settings.GATEWAY_REQUEST_BUDGET = "soon"
    with pytest.raises(GatewayError, match="GATEWAY_REQUEST_BUDGET"):
        get_gateway("daraja")
