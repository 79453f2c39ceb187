"""Shared gateway types, result-code mapping, the retrying session and get_gateway()."""

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
import responses

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
    EAT,
    Gateway,
    describe_result,
    normalise_msisdn,
    normalise_result_code,
    parse_eat_timestamp,
    parse_iso_datetime,
    session_with_retries,
    status_for_result_code,
    strip_desc_prefix,
    to_decimal,
)


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


@pytest.mark.parametrize("amount", [0, -1, 250_001, 10.5, 10.0, "10", True, Decimal("10")])
def test_stk_request_rejects_bad_amounts(amount):
    with pytest.raises(ValueError, match="amount"):
        make_request(amount=amount)


@pytest.mark.parametrize("amount", [1, 250_000])
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
    assert when == datetime(2019, 12, 19, 10, 21, 15, tzinfo=EAT)
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
