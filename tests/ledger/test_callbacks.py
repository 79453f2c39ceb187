"""Gateway callbacks: authenticated, stored verbatim first, applied once, never a 500."""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from console.kernel.clock import NAIROBI
from ledger import services
from ledger.models import CallbackLog, CallbackOutcome, JournalEntry, OrderStatus, StkStatus
from tests.ledger.factories import (  # noqa: F401
    StkRequestFactory,
    daraja_callback_body,
    ledger_settings,
    simulator_receipt,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ledger_settings")]
DATA = Path(__file__).resolve().parent.parent / "data"
DARAJA = "/api/callbacks/daraja/test-token/"
PAYHERO = "/api/callbacks/payhero/test-token/"
ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}


def dated_now(body: dict) -> dict:
    """A documented sample with its TransactionDate moved to now (old dates are refused)."""
    from django.utils import timezone

    for item in body["Body"]["stkCallback"].get("CallbackMetadata", {}).get("Item", []):
        if item["Name"] == "TransactionDate":
            item["Value"] = int(timezone.now().astimezone(NAIROBI).strftime("%Y%m%d%H%M%S"))
    return body


def send(client, url, body, **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json", **extra)


def test_daraja_success_sample_pays_the_order(client, settings):
    settings.STK_CONFIRM_SUCCESS = False  # the sample's own figures; confirmation: test_stk_confirmation
    stk = StkRequestFactory(
        checkout_request_id="ws_CO_191220191020363925",
        order__price=Decimal("1"),
        order__bundle__price=Decimal("1"),
    )
    body = dated_now(json.loads((DATA / "daraja/callback_success.json").read_text()))
    resp = send(client, DARAJA, body)
    assert resp.status_code == 200 and resp.json() == ACCEPTED
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.PAID and stk.order.mpesa_receipt == "NLJ7RT61SV"
    log = CallbackLog.objects.get()
    assert log.outcome == CallbackOutcome.APPLIED
    assert log.stk_request == stk and log.receipt == "NLJ7RT61SV"
    assert log.body == json.dumps(body)


def test_the_untouched_2019_sample_is_refused_as_out_of_range(client):
    stk = StkRequestFactory(checkout_request_id="ws_CO_191220191020363925")
    resp = send(client, DARAJA, (DATA / "daraja/callback_success.json").read_bytes())
    assert resp.status_code == 400
    log = CallbackLog.objects.get()
    assert log.outcome == CallbackOutcome.REJECTED and "TransactionDate" in log.detail
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.PENDING_PAYMENT and not JournalEntry.objects.exists()


def test_daraja_real_success_with_a_balance_item_without_value(client, settings):
    settings.STK_CONFIRM_SUCCESS = False
    body = dated_now(json.loads((DATA / "daraja/callback_real_success_balance_no_value.json").read_text()))
    checkout = body["Body"]["stkCallback"]["CheckoutRequestID"]
    stk = StkRequestFactory(
        checkout_request_id=checkout, order__price=Decimal("1"), order__bundle__price=Decimal("1")
    )
    assert send(client, DARAJA, body).status_code == 200
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.PAID


@pytest.mark.parametrize(
    ("sample", "reason"),
    [
        ("callback_failure_1032.json", "You cancelled the request"),
        ("callback_real_1032.json", "You cancelled the request"),
        ("callback_real_1036.json", "Phone unreachable"),
        ("callback_real_2001.json", "Wrong M-Pesa PIN"),
    ],
)
def test_daraja_failure_samples_fail_the_order(client, sample, reason):
    body = json.loads((DATA / "daraja" / sample).read_text())
    stk = StkRequestFactory(checkout_request_id=body["Body"]["stkCallback"]["CheckoutRequestID"])
    assert send(client, DARAJA, body).json() == ACCEPTED
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.FAILED and stk.order.status_reason == reason


def test_payhero_success_sample_matched_by_checkout_id(client, settings):
    settings.STK_CONFIRM_SUCCESS = False
    stk = StkRequestFactory(
        checkout_request_id="ws_CO_02012026103543427709099876",
        gateway="payhero",
        order__gateway="payhero",
        order__price=Decimal("10"),
        order__bundle__price=Decimal("10"),
    )
    assert send(client, PAYHERO, (DATA / "payhero/callback_success.json").read_bytes()).json() == ACCEPTED
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.PAID and stk.order.mpesa_receipt == "SAE3YULR0Y"
    assert JournalEntry.objects.get().postings.filter(account__key="stk_clearing_payhero").exists()


def test_payhero_callback_matched_by_our_order_reference(client):
    stk = StkRequestFactory(
        checkout_request_id=None, gateway_reference="E8UWT7CLUW", order__gateway="payhero"
    )
    body = {
        "status": False,
        "response": {
            "ExternalReference": stk.order.reference,
            "ResultCode": 1032,
            "ResultDesc": "Request cancelled by user",
            "Status": "Failed",
        },
    }
    assert send(client, PAYHERO, body).status_code == 200
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.FAILED and stk.order.status_reason == "You cancelled the request"


def test_same_callback_fifty_times_pays_once(client):
    stk = StkRequestFactory()
    body = daraja_callback_body(stk)
    for _ in range(50):
        assert send(client, DARAJA, body).json() == ACCEPTED
    assert JournalEntry.objects.count() == 1
    outcomes = list(CallbackLog.objects.values_list("outcome", flat=True))
    assert outcomes.count(CallbackOutcome.APPLIED) == 1
    assert outcomes.count(CallbackOutcome.DUPLICATE) == 49


def test_wrong_token_is_a_404_and_a_logged_rejection(client):
    stk = StkRequestFactory()
    resp = send(client, "/api/callbacks/daraja/guess/", daraja_callback_body(stk))
    assert resp.status_code == 404
    log = CallbackLog.objects.get()
    assert log.outcome == CallbackOutcome.REJECTED and "token" in log.detail
    stk.refresh_from_db()
    assert stk.status == StkStatus.QUEUED


def test_source_ip_allow_list(client, settings):
    settings.CALLBACK_ALLOWED_IPS = ["196.201.214.0/24"]
    stk = StkRequestFactory()
    assert send(client, DARAJA, daraja_callback_body(stk), REMOTE_ADDR="10.1.1.1").status_code == 403
    assert CallbackLog.objects.get().outcome == CallbackOutcome.REJECTED
    assert send(client, DARAJA, daraja_callback_body(stk), REMOTE_ADDR="196.201.214.200").status_code == 200
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.PAID


@pytest.mark.parametrize(
    "body",
    [
        "garbage{",
        "",
        "[]",
        {"Body": {}},
        {"Body": {"stkCallback": {"ResultCode": 0}}},
        {"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1"}}},
        {"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1", "ResultCode": 0, "CallbackMetadata": "x"}}},
    ],
)
def test_malformed_bodies_are_400_stored_with_the_error(client, body):
    resp = send(client, DARAJA, body)
    assert resp.status_code == 400
    log = CallbackLog.objects.get()
    assert log.outcome == CallbackOutcome.REJECTED and log.detail
    assert log.body == (body if isinstance(body, str) else json.dumps(body))


def test_non_utf8_body_is_a_400_not_a_500(client):
    resp = client.post(DARAJA, data=b"\xff\xfe\x00", content_type="application/json")
    assert resp.status_code == 400


def test_payhero_garbage_is_a_400(client):
    assert send(client, PAYHERO, {"hello": "world"}).status_code == 400


def test_unknown_checkout_id_is_accepted_and_kept_as_unknown_order(client):
    stk = StkRequestFactory.build(
        checkout_request_id="ws_CO_NOBODY", merchant_request_id="1", amount=1, phone="254712345678"
    )
    resp = send(client, DARAJA, daraja_callback_body(stk))
    assert resp.status_code == 200
    assert CallbackLog.objects.get().outcome == CallbackOutcome.UNKNOWN_ORDER


def test_wrong_amount_via_callback_needs_review(client):
    stk = StkRequestFactory()
    send(client, DARAJA, daraja_callback_body(stk, amount=10))
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.NEEDS_REVIEW


def test_receipt_already_used_is_logged_as_error_and_changes_nothing(client):
    stk = StkRequestFactory()
    StkRequestFactory(order__status=OrderStatus.PAID, order__mpesa_receipt=simulator_receipt(stk))
    assert send(client, DARAJA, daraja_callback_body(stk)).status_code == 200
    log = CallbackLog.objects.get()
    assert log.outcome == CallbackOutcome.ERROR and "already pays" in log.detail
    stk.refresh_from_db()
    assert stk.status == StkStatus.QUEUED


def test_reprocess_applies_a_callback_that_came_before_its_order_and_is_safe_to_repeat(client):
    stk = StkRequestFactory.build(
        checkout_request_id="ws_CO_LATE", merchant_request_id="1", amount=150, phone="254712345678"
    )
    send(client, DARAJA, daraja_callback_body(stk))
    log = CallbackLog.objects.get()
    assert log.outcome == CallbackOutcome.UNKNOWN_ORDER
    real = StkRequestFactory(checkout_request_id="ws_CO_LATE")
    assert services.callback_reprocess(log=log) == CallbackOutcome.APPLIED
    assert services.callback_reprocess(log=log) == CallbackOutcome.DUPLICATE
    log.refresh_from_db()
    assert log.attempts == 3
    real.order.refresh_from_db()
    assert real.order.status == OrderStatus.PAID
    assert JournalEntry.objects.count() == 1


def test_get_on_a_callback_url_is_405(client):
    assert client.get(DARAJA).status_code == 405
