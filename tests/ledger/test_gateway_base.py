"""Shared gateway types, result-code mapping, the retrying session and get_gateway()."""

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
import responses

from console.kernel.clock import NAIROBI
from console.kernel.phones import try_normalise_msisdn
from ledger.gateways import (
    GATEWAY_NAMES,
    CallbackParseError,
    DarajaGateway,
    GatewayError,
    GatewayRejected,
    GatewayUnavailable,
    PayHeroGateway,
    SimulatorGateway,
    StkPushRequest,
    get_gateway,
)
from ledger.gateways.base import (
    Gateway,
    describe_result,
    normalise_result_code,
    status_for_result_code,
    strip_desc_prefix,
)
from ledger.gateways.clean import clean_raw, safe_text, strict_json_loads
from ledger.gateways.http import Deadline, call_with_retries, session_with_retries
from ledger.gateways.values import (
    parse_eat_timestamp,
    parse_identifier,
    parse_iso_datetime,
    parse_result_code,
    to_decimal,
)


def normalise_msisdn(value):
    """How the gateways read a phone they report (``try_normalise_msisdn(as_reported=True)``)."""
    return try_normalise_msisdn(value, as_reported=True)


def make_request(**overrides):
    values = {
        "order_reference": "TB-000123",
        "amount": 99,
        "phone": "254708374149",
        "account_reference": "TB-000123",
        "description": "Data bundle",
        "callback_url": "https://tillbook.example/cb/daraja/",
    }
    values.update(overrides)
    return StkPushRequest(**values)


# -- StkPushRequest ----------------------------------------------------------------------------
def test_stk_request_truncates_reference_and_description():
    req = make_request(account_reference="TILLBOOK-ORDER-0001", description="Safaricom 1GB daily bundle")
    assert req.account_reference == "TILLBOOK-ORD"
    assert len(req.account_reference) == 12
    assert req.description == "Safaricom 1GB"
    assert len(req.description) == 13


def test_stk_request_is_frozen():
    req = make_request()
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.amount = 5


@pytest.mark.parametrize("amount", [0, -1, 250_000, 250_001, 10.5, 10.0, "10", True, Decimal("10")])
def test_stk_request_rejects_bad_amounts(amount):
    with pytest.raises(ValueError, match="amount"):
        make_request(amount=amount)


@pytest.mark.parametrize("amount", [1, 249_999])
def test_stk_request_accepts_amount_limits(amount):
    assert make_request(amount=amount).amount == amount


@pytest.mark.parametrize("phone", ["0708374149", "+254708374149", "25470837414", "254808374149", ""])
def test_stk_request_rejects_non_e164_phones(phone):
    with pytest.raises(ValueError, match="phone"):
        make_request(phone=phone)


def test_stk_request_accepts_01_range_numbers():
    assert make_request(phone="254110000001").phone == "254110000001"


# -- result codes ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (0, "success"),
        ("0", "success"),
        (0.0, "success"),
        (" 0 ", "success"),
        (4999, "pending"),
        ("4999", "pending"),
        ("500.001.1001", "pending"),
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
        (4, "failed"),
        (8, "failed"),
        (17, "failed"),
        (26, "failed"),
        (1001, "failed"),
        (1019, "failed"),
        (1025, "failed"),
        (1031, "failed"),
        (1032, "failed"),
        ("1032", "failed"),
        (1036, "failed"),
        (1037, "failed"),
        (2001, "failed"),
        (2028, "failed"),
        (8006, "failed"),
        (9999, "failed"),
        ("SFC_IC0003", "failed"),
        (123456, "failed"),
    ],
)
def test_status_for_result_code(code, expected):
    assert status_for_result_code(code) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [(0, "0"), ("0", "0"), (0.0, "0"), (" 1032 ", "1032"), ("01032", "1032"), ("SFC_IC0003", "SFC_IC0003")],
)
def test_normalise_result_code(code, expected):
    assert normalise_result_code(code) == expected


@pytest.mark.parametrize("code", [None, "", "  ", True])
def test_normalise_result_code_empty(code):
    assert normalise_result_code(code) is None


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (1032, "You cancelled the request"),
        ("1031", "You cancelled the request"),
        (1, "Insufficient M-Pesa balance"),
        (1037, "Phone unreachable"),
        (1036, "Phone unreachable"),
        (2001, "Wrong M-Pesa PIN"),
        (1019, "The request expired"),
        (17, "Same amount paid within 2 minutes; try again later"),
        (0, "Payment received"),
        (4999, "Payment is still being processed"),
    ],
)
def test_describe_result_plain_words(code, expected):
    assert describe_result(code, "[STK_CB - ]whatever the gateway said") == expected


@pytest.mark.parametrize("code", [1001, 1025, 26, 9999])
def test_describe_result_generic_codes_are_readable(code):
    text = describe_result(code, "[STK_CB - ]Internal error occurred while executing the transaction.")
    assert text
    assert "[" not in text
    assert "try again" in text.lower()


def test_describe_result_unknown_code_uses_gateway_text_without_prefix():
    assert describe_result(777, "[STK_CB - ]Something new happened.") == "Something new happened."
    assert describe_result("777", "[MpesaCB - ][STK_CB - ] odd") == "odd"


def test_describe_result_unknown_code_and_no_text():
    assert describe_result(777, "") == "M-Pesa result code 777"
    assert describe_result(None, None) == "No result from M-Pesa yet"


def test_describe_result_never_branches_on_desc():
    # the code decides; a misleading desc is ignored for known codes
    assert (
        describe_result(1032, "The service request is processed successfully.") == "You cancelled the request"
    )
    assert status_for_result_code(1032) == "failed"


def test_strip_desc_prefix():
    assert strip_desc_prefix("[STK_CB - ]Request cancelled by user") == "Request cancelled by user"
    assert strip_desc_prefix("Plain") == "Plain"
    assert strip_desc_prefix(None) == ""


# -- small parsers -----------------------------------------------------------------------------
def test_parse_eat_timestamp_is_aware_eat():
    when = parse_eat_timestamp(20191219102115)
    assert when == datetime(2019, 12, 19, 10, 21, 15, tzinfo=NAIROBI)
    assert when.utcoffset().total_seconds() == 3 * 3600
    assert when.astimezone(UTC) == datetime(2019, 12, 19, 7, 21, 15, tzinfo=UTC)
    assert parse_eat_timestamp("20191219102115") == when
    assert parse_eat_timestamp(None) is None
    assert parse_eat_timestamp("yesterday") is None


def test_parse_iso_datetime():
    assert parse_iso_datetime("2024-11-26T08:41:14.160604Z") == datetime(
        2024, 11, 26, 8, 41, 14, 160604, tzinfo=UTC
    )
    assert parse_iso_datetime("") is None
    assert parse_iso_datetime("nope") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (254708374149, "254708374149"),
        ("+254709099876", "254709099876"),
        ("0709099876", "254709099876"),
        ("254 709 099 876", "254709099876"),
        (None, None),
        ("", None),
    ],
)
def test_normalise_msisdn(value, expected):
    assert normalise_msisdn(value) == expected


def test_to_decimal():
    assert to_decimal(1.00) == Decimal("1.0")
    assert to_decimal("10") == Decimal("10")
    assert to_decimal(None) is None
    assert to_decimal("ten") is None


# -- errors ------------------------------------------------------------------------------------
def test_error_hierarchy_and_messages():
    err = GatewayRejected("Bad Request - Invalid BusinessShortCode", code="400.002.02", http_status=400)
    assert isinstance(err, GatewayError)
    assert err.message == "Bad Request - Invalid BusinessShortCode"
    assert str(err) == err.message
    unavailable = GatewayUnavailable("slow", ambiguous=True)
    assert isinstance(unavailable, GatewayError)
    assert unavailable.ambiguous is True
    assert GatewayUnavailable("x").ambiguous is False
    parse_error = CallbackParseError("missing Body")
    assert isinstance(parse_error, ValueError)
    assert parse_error.message == "missing Body"


def test_gateway_is_abstract():
    with pytest.raises(TypeError):
        Gateway()


# -- session_with_retries ----------------------------------------------------------------------
@responses.activate
def test_session_retries_get_on_503_then_succeeds():
    url = "https://gw.example/status"
    responses.get(url, status=503)
    responses.get(url, json={"ok": True})
    resp = session_with_retries(backoff_factor=0).get(url, timeout=(1, 2))
    assert resp.status_code == 200
    assert len(responses.calls) == 2


@responses.activate
def test_session_gives_up_after_retries_and_returns_last_response():
    url = "https://gw.example/status"
    responses.get(url, status=503)
    resp = session_with_retries(retries=2, backoff_factor=0).get(url, timeout=(1, 2))
    assert resp.status_code == 503
    assert len(responses.calls) == 3


@responses.activate
def test_session_does_not_retry_post_by_default():
    url = "https://gw.example/pay"
    responses.post(url, status=503)
    responses.post(url, json={"ok": True})
    resp = session_with_retries(backoff_factor=0).post(url, json={}, timeout=(1, 2))
    assert resp.status_code == 503
    assert len(responses.calls) == 1


@responses.activate
def test_session_without_retries_does_not_retry_get():
    url = "https://gw.example/status"
    responses.get(url, status=503)
    responses.get(url, json={"ok": True})
    resp = session_with_retries(retries=0).get(url, timeout=(1, 2))
    assert resp.status_code == 503
    assert len(responses.calls) == 1


@responses.activate
def test_session_does_not_retry_500():
    url = "https://gw.example/status"
    responses.get(url, status=500)
    responses.get(url, json={"ok": True})
    resp = session_with_retries(backoff_factor=0).get(url, timeout=(1, 2))
    assert resp.status_code == 500
    assert len(responses.calls) == 1


def test_session_is_a_requests_session():
    assert isinstance(session_with_retries(), requests.Session)


# -- get_gateway -------------------------------------------------------------------------------
PAYHERO_SETTINGS = {
    "PAYHERO_BASE_URL": "https://backend.payhero.co.ke/api/v2",
    "PAYHERO_API_USERNAME": "fake-user",
    "PAYHERO_API_PASSWORD": "fake-pass",
    "PAYHERO_CHANNEL_ID": "911",
}
DARAJA_SETTINGS = {
    "DARAJA_BASE_URL": "https://sandbox.safaricom.co.ke",
    "DARAJA_CONSUMER_KEY": "fake-key",
    "DARAJA_CONSUMER_SECRET": "fake-secret",
    "DARAJA_SHORTCODE": "174379",
    "DARAJA_PASSKEY": "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
    "DARAJA_TRANSACTION_TYPE": "CustomerBuyGoodsOnline",
    "DARAJA_PARTY_B": "6944804",
}


def apply(settings, values):
    for key, value in values.items():
        setattr(settings, key, value)


def test_gateway_names():
    assert GATEWAY_NAMES == ("simulator", "payhero", "daraja")


def test_get_gateway_default_from_settings(settings):
    settings.PAYMENT_GATEWAY = "simulator"
    gateway = get_gateway()
    assert isinstance(gateway, SimulatorGateway)
    assert gateway.name == "simulator"


def test_get_gateway_unknown_name(settings):
    with pytest.raises(GatewayError, match="Unknown payment gateway 'mpesa-g2'"):
        get_gateway("mpesa-g2")


def test_get_gateway_payhero_missing_credentials(settings):
    apply(settings, {**PAYHERO_SETTINGS, "PAYHERO_API_USERNAME": "", "PAYHERO_CHANNEL_ID": ""})
    with pytest.raises(GatewayError) as exc:
        get_gateway("payhero")
    assert exc.value.message.startswith("PayHero is not configured: set PAYHERO_API_USERNAME")
    assert "PAYHERO_CHANNEL_ID" in exc.value.message
    assert "PAYHERO_API_PASSWORD" not in exc.value.message


def test_get_gateway_payhero_bad_channel(settings):
    apply(settings, {**PAYHERO_SETTINGS, "PAYHERO_CHANNEL_ID": "my-till"})
    with pytest.raises(GatewayError, match="PAYHERO_CHANNEL_ID"):
        get_gateway("payhero")


def test_get_gateway_payhero_builds_config(settings):
    apply(settings, PAYHERO_SETTINGS)
    settings.GATEWAY_CONNECT_TIMEOUT = 3.0
    settings.GATEWAY_READ_TIMEOUT = 12.0
    settings.PAYMENT_GATEWAY = "payhero"
    gateway = get_gateway()
    assert isinstance(gateway, PayHeroGateway)
    assert gateway.config.channel_id == 911
    assert gateway.config.username == "fake-user"
    assert (gateway.config.connect_timeout, gateway.config.read_timeout) == (3.0, 12.0)
    assert get_gateway("payhero") is gateway  # one instance per configuration


def test_get_gateway_daraja_builds_config(settings):
    apply(settings, DARAJA_SETTINGS)
    gateway = get_gateway("daraja")
    assert isinstance(gateway, DarajaGateway)
    assert gateway.config.shortcode == "174379"
    assert gateway.config.party_b == "6944804"
    assert gateway.config.transaction_type == "CustomerBuyGoodsOnline"
    assert "fake-secret" not in repr(gateway.config)
    assert DARAJA_SETTINGS["DARAJA_PASSKEY"] not in repr(gateway.config)
    assert get_gateway("DARAJA") is gateway


def test_get_gateway_daraja_missing_credentials(settings):
    apply(settings, {**DARAJA_SETTINGS, "DARAJA_PASSKEY": "", "DARAJA_CONSUMER_KEY": ""})
    with pytest.raises(
        GatewayError, match="Daraja is not configured: set DARAJA_CONSUMER_KEY, DARAJA_PASSKEY"
    ):
        get_gateway("daraja")


def test_get_gateway_daraja_buy_goods_needs_till(settings):
    apply(settings, {**DARAJA_SETTINGS, "DARAJA_PARTY_B": ""})
    with pytest.raises(GatewayError, match="DARAJA_PARTY_B"):
        get_gateway("daraja")


def test_get_gateway_daraja_paybill_defaults_party_b_to_shortcode(settings):
    apply(
        settings,
        {**DARAJA_SETTINGS, "DARAJA_PARTY_B": "", "DARAJA_TRANSACTION_TYPE": "CustomerPayBillOnline"},
    )
    gateway = get_gateway("daraja")
    assert gateway._party_b == "174379"


def test_get_gateway_daraja_bad_transaction_type(settings):
    apply(settings, {**DARAJA_SETTINGS, "DARAJA_TRANSACTION_TYPE": "BuyGoods"})
    with pytest.raises(GatewayError, match="DARAJA_TRANSACTION_TYPE"):
        get_gateway("daraja")


# -- strict parsing helpers --------------------------------------------------------------------
@pytest.mark.parametrize(
    "text", ["NaN", "-Infinity", "Infinity", "[1e400]", '{"a": -1e400}', "[" * 5000 + "]" * 5000]
)
def test_strict_json_refuses_python_extensions_and_deep_nesting(text):
    with pytest.raises(ValueError):
        strict_json_loads(text)


def test_strict_json_reads_ordinary_json():
    assert strict_json_loads('{"a": [1, 1.5, "x", null, true]}') == {"a": [1, 1.5, "x", None, True]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0"),
        ("0", "0"),
        (" 0 ", "0"),
        (0.0, "0"),
        (1032.0, "1032"),
        ("01032", "1032"),
        ("SFC_IC0003", "SFC_IC0003"),
    ],
)
def test_parse_result_code_accepts(value, expected):
    assert parse_result_code(value, "ResultCode") == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0.5,
        float("nan"),
        float("inf"),
        1e10,
        10**12,
        [0],
        {},
        "",
        "0.0",
        "abc",
        "NaN",
        "Infinity",
        "sfc_ic0003",
        "0\x00",
        "1 2",
        "\u0660",  # ARABIC-INDIC DIGIT ZERO: int() reads it as 0, a forger's "success"
        "\uff10",  # FULLWIDTH DIGIT ZERO
        "１０３２",
    ],
)
def test_parse_result_code_refuses(value):
    with pytest.raises(CallbackParseError, match="ResultCode"):
        parse_result_code(value, "ResultCode")


def test_parse_identifier():
    assert parse_identifier(" ws_CO_1 ", "id") == "ws_CO_1"
    assert parse_identifier(123, "id") == "123"
    assert parse_identifier(None, "id") is None
    assert parse_identifier("", "id") is None
    assert parse_identifier("x" * 64, "id") == "x" * 64
    for bad in ("x" * 65, "a\x00b", "a\x1fb", "a\x7fb", "a\x85b", "a\ud800b", 1.5, True, [], {}):
        with pytest.raises(CallbackParseError, match="id"):
            parse_identifier(bad, "id")
    with pytest.raises(CallbackParseError, match="missing"):
        parse_identifier(" ", "id", required=True)


def test_safe_text_and_clean_raw_remove_nul_control_chars_and_surrogates():
    assert safe_text("a\x00b\x07c\ud800d") == "abcd"
    assert safe_text(["x"]) == "" and safe_text(None) == ""
    assert len(safe_text("x" * 1000)) == 255
    raw = clean_raw({"a\x00": ["b\x00", {"c": "\udfff"}], "n": float("nan"), "i": 1})
    assert raw == {"a": ["b", {"c": ""}], "n": "nan", "i": 1}


@pytest.mark.parametrize(
    "value", ["1234567890123456", 10**16, 1e16, float("nan"), float("inf"), 2.5, {"a": 1}, [1], "x" * 50]
)
def test_normalise_msisdn_refuses_non_numbers_and_more_than_15_digits(value):
    assert normalise_msisdn(value) is None


def test_normalise_msisdn_ignores_non_ascii_digits():
    assert normalise_msisdn("\u0660\u0667\u0660\u0668\u0663\u0667\u0664\u0661\u0664\u0669") is None
    assert normalise_msisdn("０７０８３７４１４９") is None


def test_parse_eat_timestamp_needs_ascii_digits():
    assert parse_eat_timestamp("２０１９１２１９１０２１１５") is None


def test_normalise_msisdn_keeps_up_to_15_digits():
    assert normalise_msisdn("123456789012345") == "123456789012345"


@pytest.mark.parametrize(
    "value",
    [2019121910211, "201912191021150", 20191219102115.5, float("inf"), float("nan"), [1], "2019-12-19"],
)
def test_parse_eat_timestamp_needs_exactly_14_digits(value):
    assert parse_eat_timestamp(value) is None


def test_parse_eat_timestamp_extremes_parse_and_are_left_to_the_window():
    assert parse_eat_timestamp("00010101000000") == datetime(1, 1, 1, tzinfo=NAIROBI)
    assert parse_eat_timestamp(20191219102115.0) == datetime(2019, 12, 19, 10, 21, 15, tzinfo=NAIROBI)


def test_parse_iso_datetime_refuses_unconvertible_extremes():
    assert parse_iso_datetime("0001-01-01T00:00:00+05:00") is None
    assert parse_iso_datetime("9999-12-31T23:59:59-05:00") is None
    assert parse_iso_datetime("x" * 100) is None


def test_gateway_error_cleans_message_code_and_raw():
    err = GatewayError("bad\x00 thing\x07" + "x" * 2000, code="400\x00.1", raw={"e\x00": ["\x00"]})
    assert "\x00" not in err.message and "\x07" not in err.message
    assert len(err.message) <= 1000
    assert str(err) == err.message
    assert err.code == "400.1"
    assert err.raw == {"e": [""]}
    assert GatewayUnavailable("x", raw="text\x00").raw == "text"
    assert GatewayRejected("x").raw is None and GatewayRejected("x").code is None


def test_to_decimal_refuses_non_finite():
    assert to_decimal("NaN") is None
    assert to_decimal(float("inf")) is None
    assert to_decimal([1]) is None


# -- time budget -------------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_deadline_scales_timeouts_to_the_time_left():
    clock = Clock()
    deadline = Deadline(25.0, gateway="Daraja", clock=clock)
    assert deadline.timeout(5.0, 20.0, "x") == (5.0, 20.0)
    clock.now = 15.0
    assert deadline.timeout(5.0, 20.0, "x") == pytest.approx((2.0, 8.0))
    clock.now = 24.6
    with pytest.raises(GatewayUnavailable) as exc:
        deadline.timeout(5.0, 20.0, "getting an access token")
    assert exc.value.ambiguous is False
    assert "25 s" in exc.value.message and "getting an access token" in exc.value.message
    assert Deadline(None, gateway="X", clock=clock).timeout(5.0, 20.0, "x") == (5.0, 20.0)


def test_call_with_retries_retries_then_stops_at_the_deadline():
    clock = Clock()
    deadline = Deadline(25.0, gateway="Daraja", clock=clock)
    timeouts = []

    def send(timeout):
        timeouts.append(timeout)
        clock.now += sum(timeout)
        raise requests.ConnectionError("reset")

    with pytest.raises(requests.ConnectionError):
        call_with_retries(send, deadline=deadline, connect=2.0, read=8.0, action="x", sleep=clock.sleep)
    assert len(timeouts) == 3  # 10 s + 10 s + (0.6 s pause) + 4.4 s
    assert timeouts[2] == pytest.approx((0.88, 3.52))
    assert clock.now <= 25.0


def test_call_with_retries_does_not_retry_a_read_timeout():
    calls = []

    def send(timeout):
        calls.append(timeout)
        raise requests.ReadTimeout("slow")

    with pytest.raises(requests.ReadTimeout):
        call_with_retries(send, deadline=Deadline(25.0, gateway="X"), connect=5.0, read=20.0, action="x")
    assert len(calls) == 1


def test_call_with_retries_retries_connect_errors_then_answers():
    answer = requests.Response()
    answer.status_code = 200
    outcomes = [requests.ConnectTimeout("slow connect"), requests.ConnectionError("refused"), answer]

    def send(timeout):
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    clock = Clock()
    got = call_with_retries(
        send,
        deadline=Deadline(25.0, gateway="X", clock=clock),
        connect=5,
        read=20,
        action="x",
        sleep=clock.sleep,
    )
    assert got is answer


def test_call_with_retries_returns_the_last_bad_response():
    clock = Clock()
    deadline = Deadline(None, gateway="Daraja", clock=clock)
    resp = requests.Response()
    resp.status_code = 503
    calls = []

    def send(timeout):
        calls.append(timeout)
        return resp

    assert (
        call_with_retries(send, deadline=deadline, connect=1, read=2, action="x", sleep=clock.sleep) is resp
    )
    assert len(calls) == 3
    assert clock.now == pytest.approx(0.6)  # no pause before the first retry, 0.6 s before the second
