"""Simulator gateway: no network, Daraja-shaped ids and callbacks, failures by phone number."""

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import responses

import ledger.gateways.simulator as module
from console.kernel.clock import NAIROBI
from console.kernel.mpesa import date_prefix
from ledger.gateways import SIMULATED_FAILURES, SimulatorGateway, StatusQuery, StkPushRequest, get_gateway
from ledger.gateways.base import OFFICIAL_RESULT_DESCS, describe_result
from ledger.gateways.daraja import parse_daraja_callback
from ledger.gateways.simulator import (
    receipt_for,
    sent_time_from_checkout,
    simulated_result_code,
)

DARAJA_DATA = Path(__file__).resolve().parent.parent / "data" / "daraja"


def make_request(phone="254708374149", amount=99):
    return StkPushRequest(
        order_reference="TB-000123",
        amount=amount,
        phone=phone,
        account_reference="TB-000123",
        description="Data bundle",
        callback_url="https://tillbook.example/cb/",
    )


def shape(value):
    """Keys and value types, recursively, to compare with the doc's sample."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return "number" if isinstance(value, int | float) else type(value).__name__


@responses.activate  # no URLs registered: any HTTP call would fail
def test_initiate_needs_no_network_and_looks_like_daraja():
    gateway = SimulatorGateway()
    first = gateway.initiate_stk(make_request())
    second = gateway.initiate_stk(make_request())
    assert len(responses.calls) == 0
    assert re.fullmatch(r"ws_CO_\d{26}", first.checkout_request_id)
    assert re.fullmatch(r"\d{5}-\d{8}-1", first.merchant_request_id)
    assert first.gateway_reference == first.checkout_request_id
    assert first.checkout_request_id != second.checkout_request_id
    assert first.raw_response["ResponseCode"] == "0"
    assert first.raw_request["Amount"] == 99
    # ws_CO_ + DDMMYYYYHHmmss in Nairobi time
    stamp = datetime.strptime(first.checkout_request_id[6:20], "%d%m%Y%H%M%S").replace(tzinfo=NAIROBI)
    assert abs((datetime.now(NAIROBI) - stamp).total_seconds()) < 120


def test_simulated_failures_table():
    assert SIMULATED_FAILURES == {
        "254700000001": 1032,
        "254700000002": 1037,
        "254700000003": 1,
        "254700000004": 2001,
    }
    assert simulated_result_code("254700000002") == 1037
    assert simulated_result_code("254708374149") == 0
    assert SimulatorGateway.result_code_for("254700000004") == 2001
    for phone, code in SIMULATED_FAILURES.items():  # documented in the module docstring
        assert phone in module.__doc__
        assert str(code) in module.__doc__


@pytest.mark.parametrize(
    ("day", "prefix"),
    [
        (datetime(2019, 12, 19), "NLJ"),  # NLJ7RT61SV, Safaricom doc sample
        (datetime(2017, 7, 27), "LGR"),  # LGR7OWQX0R
        (datetime(2019, 3, 11), "NCB"),  # NCB9FJNAIT, django-daraja
        (datetime(2024, 11, 26), "SKQ"),  # SKQ96C7K7H, PayHero
        (datetime(2024, 1, 14), "SAE"),  # SAE3YULR0Y, PayHero
        (datetime(2023, 9, 25), "RIP"),  # the "RIP" codes story
        (datetime(2025, 1, 9), "TA9"),
        (datetime(2026, 12, 31), "ULV"),
    ],
)
def test_receipt_prefix_encodes_the_date(day, prefix):
    assert date_prefix(day) == prefix


def test_receipt_is_ten_uppercase_alphanumerics_dated_and_stable_per_prompt():
    when = datetime(2024, 11, 26, 10, 0, tzinfo=NAIROBI)
    receipt = receipt_for("ws_CO_26112024100000001", when)
    assert re.fullmatch(r"[A-Z0-9]{10}", receipt)
    assert receipt.startswith("SKQ")
    assert receipt_for("ws_CO_26112024100000001", when) == receipt  # callback and query agree
    assert receipt_for("ws_CO_26112024100000002", when) != receipt


def test_status_query_answers_the_outcome_the_callback_would_carry():
    from decimal import Decimal

    from ledger.gateways.base import StatusQuery

    gateway = SimulatorGateway()
    paid = gateway.query_status(
        StatusQuery("ws_CO_1", None, "TXN-AAAA2222", phone="254712345678", amount=Decimal("150"))
    )
    assert (
        paid.status == "success" and paid.amount == Decimal("150") and paid.receipt == receipt_for("ws_CO_1")
    )
    assert paid.external_reference == "TXN-AAAA2222"
    cancelled = gateway.query_status(
        StatusQuery("ws_CO_2", None, "TXN-AAAA3333", phone="254700000001", amount=Decimal("150"))
    )
    assert cancelled.status == "failed" and cancelled.result_code == "1032"
    unknown = gateway.query_status(StatusQuery("ws_CO_3", None, "TXN-AAAA4444"))
    assert unknown.status == "pending"


def test_build_success_callback_matches_the_daraja_sample_shape():
    gateway = SimulatorGateway()
    when = datetime(2019, 12, 19, 10, 21, 15, tzinfo=NAIROBI)
    body = gateway.build_callback(
        "ws_CO_191220191020363925", "29115-34620561-1", 1, "254708374149", 0, now=when
    )
    sample = json.loads((DARAJA_DATA / "callback_success.json").read_text())
    assert shape(body) == shape(sample)
    items = {i["Name"]: i["Value"] for i in body["Body"]["stkCallback"]["CallbackMetadata"]["Item"]}
    assert items["TransactionDate"] == 20191219102115
    assert items["PhoneNumber"] == 254708374149
    assert items["Amount"] == 1
    assert re.fullmatch(r"NLJ[A-Z0-9]{7}", items["MpesaReceiptNumber"])
    assert body["Body"]["stkCallback"]["ResultDesc"] == "The service request is processed successfully."
    assert body["Body"]["stkCallback"]["ResultCode"] == 0

    result = parse_daraja_callback(json.dumps(body).encode(), now=when + timedelta(seconds=5))
    assert result.status == "success"
    assert result.receipt == items["MpesaReceiptNumber"]
    assert result.amount == Decimal("1")
    assert result.phone == "254708374149"
    assert result.paid_at == when
    assert result.checkout_request_id == "ws_CO_191220191020363925"
    assert result.merchant_request_id == "29115-34620561-1"


def test_build_success_callback_uses_todays_date_by_default():
    body = SimulatorGateway.build_callback("ws_CO_1", "1-2-1", Decimal("250"), "254708374149", 0)
    items = {i["Name"]: i["Value"] for i in body["Body"]["stkCallback"]["CallbackMetadata"]["Item"]}
    assert items["MpesaReceiptNumber"].startswith(date_prefix(datetime.now(NAIROBI)))
    assert items["Amount"] == 250
    json.dumps(body)  # serialisable


@pytest.mark.parametrize(("phone", "code"), sorted(SIMULATED_FAILURES.items()))
def test_build_failure_callbacks(phone, code):
    gateway = SimulatorGateway()
    accepted = gateway.initiate_stk(make_request(phone=phone))
    body = gateway.build_callback(
        accepted.checkout_request_id, accepted.merchant_request_id, 99, phone, gateway.result_code_for(phone)
    )
    callback = body["Body"]["stkCallback"]
    assert set(callback) == {"MerchantRequestID", "CheckoutRequestID", "ResultCode", "ResultDesc"}
    assert callback["ResultCode"] == code
    assert callback["ResultDesc"] == OFFICIAL_RESULT_DESCS[str(code)]
    result = gateway.parse_callback(json.dumps(body).encode())
    assert result.status == "failed"
    assert result.result_code == str(code)
    assert result.receipt is None
    assert result.checkout_request_id == accepted.checkout_request_id
    assert result.plain_message == describe_result(code, None)


def test_failure_callback_matches_the_daraja_failure_sample_shape():
    body = SimulatorGateway.build_callback("ws_CO_1", "1-2-1", 10, "254700000001", 1032)
    sample = json.loads((DARAJA_DATA / "callback_failure_1032.json").read_text())
    assert shape(body) == shape(sample)
    assert body["Body"]["stkCallback"]["ResultDesc"] == sample["Body"]["stkCallback"]["ResultDesc"] + "."


def test_query_status_is_pending():
    gateway = SimulatorGateway()
    result = gateway.query_status(StatusQuery("ws_CO_1", "ws_CO_1", "TB-000123"))
    assert result.status == "pending"
    assert result.checkout_request_id == "ws_CO_1"
    assert result.external_reference == "TB-000123"
    assert gateway.name == "simulator"


# -- status queries answer like a real gateway --------------------------------------------------
class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


SENT = datetime(2026, 11, 30, 14, 0, 0, tzinfo=NAIROBI)


def ask(gateway, phone="254712345678", sent_at=SENT, checkout="ws_CO_1", amount=Decimal("150")):
    return gateway.query_status(
        StatusQuery(checkout, checkout, "TXN-AAAA2222", phone=phone, amount=amount, sent_at=sent_at)
    )


def test_status_query_has_sent_at():
    assert StatusQuery("ws_CO_1", None, "TB-1").sent_at is None


@pytest.mark.parametrize("phone", ["254712345678", "254700000001"])
def test_query_is_pending_until_the_customer_acts(phone):
    clock = Clock(SENT + timedelta(seconds=2.9))
    gateway = SimulatorGateway(callback_delay=3.0, clock=clock)
    early = ask(gateway, phone)
    assert early.status == "pending"
    assert early.result_code == "4999"
    assert early.result_desc == "The transaction is still under processing"
    assert (early.receipt, early.amount, early.paid_at) == (None, None, None)
    clock.now = SENT + timedelta(seconds=3)
    assert ask(gateway, phone).status in ("success", "failed")


def test_query_after_the_delay_answers_the_callback_outcome():
    gateway = SimulatorGateway(callback_delay=3.0, clock=Clock(SENT + timedelta(seconds=10)))
    paid = ask(gateway)
    assert paid.status == "success"
    assert paid.result_code == "0"
    assert paid.amount == Decimal("150.00")
    assert paid.receipt == receipt_for("ws_CO_1", sent_at=SENT)
    assert paid.paid_at == SENT + timedelta(seconds=3)  # when the simulated customer typed the PIN
    assert paid.phone == "254712345678"
    cancelled = ask(gateway, "254700000001")
    assert (cancelled.status, cancelled.result_code, cancelled.receipt) == ("failed", "1032", None)


def test_zero_delay_answers_at_once():
    gateway = SimulatorGateway(callback_delay=0, clock=Clock(SENT))
    assert ask(gateway).status == "success"


def test_without_sent_at_the_send_time_is_read_from_the_checkout_id():
    gateway = SimulatorGateway(callback_delay=3.0)
    accepted = gateway.initiate_stk(make_request())
    sent = sent_time_from_checkout(accepted.checkout_request_id)
    assert abs((datetime.now(NAIROBI) - sent).total_seconds()) < 5
    assert ask(gateway, sent_at=None, checkout=accepted.checkout_request_id).status == "pending"
    later = SimulatorGateway(callback_delay=3.0, clock=Clock(sent + timedelta(seconds=4)))
    assert ask(later, sent_at=None, checkout=accepted.checkout_request_id).status == "success"


def test_sent_time_from_checkout():
    assert sent_time_from_checkout("ws_CO_30112026235959123456789012") == datetime(
        2026, 11, 30, 23, 59, 59, 123000, tzinfo=NAIROBI
    )
    for other in (
        "ws_CO_1",
        "ws_CO_DMZ_264695293_11032019122104433",
        "ws_CO_99999999999999123456789012",
        None,
    ):
        assert sent_time_from_checkout(other) is None


def test_sent_at_in_utc_is_the_same_moment():
    gateway = SimulatorGateway(callback_delay=3.0, clock=Clock(SENT + timedelta(seconds=2)))
    assert ask(gateway, sent_at=SENT.astimezone(UTC)).status == "pending"


def test_callback_and_query_agree_on_the_receipt_across_midnight():
    sent = datetime(2026, 11, 30, 23, 59, 59, tzinfo=NAIROBI)  # prompt sent one second before midnight
    checkout = "ws_CO_30112026235959000123456789"
    after_midnight = sent + timedelta(seconds=6)
    gateway = SimulatorGateway(callback_delay=3.0, clock=Clock(after_midnight))
    queried = ask(gateway, sent_at=sent, checkout=checkout)
    # The background task builds the callback after midnight, without sent_at (tasks.py).
    body = SimulatorGateway.build_callback(
        checkout, "1-2-1", 150, "254712345678", 0, now=sent + timedelta(seconds=3)
    )
    items = {i["Name"]: i["Value"] for i in body["Body"]["stkCallback"]["CallbackMetadata"]["Item"]}
    assert items["MpesaReceiptNumber"] == queried.receipt
    assert queried.receipt.startswith(date_prefix(sent))  # the day the prompt was sent
    assert not queried.receipt.startswith(date_prefix(after_midnight))
    # A non-simulator id: the sent_at given to both sides decides.
    other = SimulatorGateway.build_callback(
        "ws_CO_1", "1-2-1", 150, "254712345678", 0, now=after_midnight, sent_at=sent
    )
    other_items = {i["Name"]: i["Value"] for i in other["Body"]["stkCallback"]["CallbackMetadata"]["Item"]}
    assert other_items["MpesaReceiptNumber"] == ask(gateway, sent_at=sent).receipt


def test_receipt_for_prefers_sent_at_over_now():
    sent = datetime(2026, 11, 30, 23, 59, tzinfo=NAIROBI)
    assert receipt_for("ws_CO_1", sent + timedelta(hours=1), sent_at=sent) == receipt_for("ws_CO_1", sent)
    assert receipt_for("ws_CO_1", sent_at=sent).startswith("UKU")  # U=2026, K=November, U=30


def test_query_never_raises_a_parse_error():
    gateway = SimulatorGateway(callback_delay=0)
    # An amount the callback parser would refuse (not below MAX_PAYMENT_AMOUNT) is simply None here.
    result = ask(gateway, amount=Decimal("250000"), sent_at=datetime(2020, 1, 1, tzinfo=NAIROBI))
    assert result.status == "success"
    assert result.amount is None


def test_get_gateway_reads_the_callback_delay(settings):
    settings.SIMULATOR_CALLBACK_DELAY = 7.5
    assert get_gateway("simulator").callback_delay == 7.5
    settings.SIMULATOR_CALLBACK_DELAY = 0
    assert get_gateway("simulator").callback_delay == 0
    assert SimulatorGateway().callback_delay == 3.0
