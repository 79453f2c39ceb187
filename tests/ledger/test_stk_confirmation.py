"""A callback alone proves nothing: an STK success is paid only once the gateway's status query
confirms it, for the amount we asked; the callback's figures are cross-checks."""

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import responses
from django.utils import timezone

from ledger import services
from ledger.models import CallbackLog, CallbackOutcome, JournalEntry, OrderStatus, StkStatus
from tests.ledger.factories import StkRequestFactory, daraja_callback_body, ledger_settings  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ledger_settings")]
DATA = Path(__file__).resolve().parent.parent / "data"
DARAJA_URL = "/api/callbacks/daraja/test-token/"
PAYHERO_URL = "/api/callbacks/payhero/test-token/"
DARAJA_TOKEN = "https://sandbox.safaricom.co.ke/oauth/v1/generate"
DARAJA_QUERY = "https://sandbox.safaricom.co.ke/mpesa/stkpushquery/v1/query"
DARAJA_PUSH = "https://sandbox.safaricom.co.ke/mpesa/stkpush/v1/processrequest"
PAYHERO_STATUS = "https://backend.payhero.co.ke/api/v2/transaction-status"


def load(name):
    return json.loads((DATA / name).read_text())


@pytest.fixture
def confirm_on(settings):
    settings.STK_CONFIRM_SUCCESS = True
    return settings


@pytest.fixture
def daraja(confirm_on):
    confirm_on.DARAJA_CONSUMER_KEY, confirm_on.DARAJA_CONSUMER_SECRET = "key", "secret"
    confirm_on.DARAJA_SHORTCODE, confirm_on.DARAJA_PASSKEY, confirm_on.DARAJA_PARTY_B = (
        "174379",
        "pk",
        "6944804",
    )
    return StkRequestFactory(gateway="daraja", order__gateway="daraja")


@pytest.fixture
def payhero(confirm_on):
    confirm_on.PAYHERO_API_USERNAME, confirm_on.PAYHERO_API_PASSWORD = "u", "p"
    confirm_on.PAYHERO_CHANNEL_ID = "911"
    return StkRequestFactory(
        gateway="payhero",
        order__gateway="payhero",
        checkout_request_id="ws_CO_02012026103543427709099876",
        gateway_reference="6b71cb8b-638d-4b6e-9c7c-b0334a641e3a",
        order__payer_msisdn="254709099876",
    )


def daraja_success(stk, *, receipt="UKR8X8UGJW", amount=None, phone=None) -> dict:
    return daraja_callback_body(stk, receipt=receipt, amount=amount, phone=phone)


def query_answer(stk, code="0"):
    body = load("daraja/query_success.json")
    body.update(CheckoutRequestID=stk.checkout_request_id, ResultCode=code)
    return body


def post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def daraja_answers(stk, *query_bodies):
    responses.get(DARAJA_TOKEN, json={"access_token": "tok", "expires_in": "3599"})
    for body in query_bodies:
        if isinstance(body, Exception):
            responses.post(DARAJA_QUERY, body=body)
        else:
            responses.post(DARAJA_QUERY, json=body)


# --- hole 1: a forged success is not believed ----------------------------------------------------
@responses.activate
def test_a_success_the_query_says_was_cancelled_pays_nothing(client, daraja):
    daraja_answers(daraja, query_answer(daraja, "1032"))
    resp = post(client, DARAJA_URL, daraja_success(daraja, receipt="UFAKE12345"))
    assert resp.status_code == 200  # acknowledged: the gateway must not retry a stored body
    daraja.order.refresh_from_db()
    assert daraja.order.status == OrderStatus.FAILED
    assert daraja.order.mpesa_receipt is None
    assert not JournalEntry.objects.exists()
    log = CallbackLog.objects.get()
    assert log.outcome == CallbackOutcome.UNCONFIRMED and "not applied" in log.detail
    assert log.confirmation["callback"]["receipt"] == "UFAKE12345"
    assert log.confirmation["gateway"]["result_code"] == "1032"


@responses.activate
def test_a_success_the_query_cannot_confirm_yet_waits_and_pays_nothing(client, daraja):
    daraja_answers(daraja, load("daraja/query_pending_error.json"))
    assert post(client, DARAJA_URL, daraja_success(daraja)).status_code == 200
    daraja.order.refresh_from_db()
    assert daraja.order.status == OrderStatus.PENDING_PAYMENT
    assert not JournalEntry.objects.exists()
    log = CallbackLog.objects.get()
    assert log.outcome == CallbackOutcome.CONFIRMING
    assert log.next_attempt_at > timezone.now()


@responses.activate
def test_a_confirmed_success_pays_the_price_once_with_the_callback_receipt(client, daraja):
    daraja_answers(daraja, query_answer(daraja))
    for _ in range(3):
        assert post(client, DARAJA_URL, daraja_success(daraja)).status_code == 200
    daraja.order.refresh_from_db()
    assert daraja.order.status == OrderStatus.PAID
    assert daraja.order.mpesa_receipt == "UKR8X8UGJW" and daraja.order.amount_paid == daraja.order.price
    assert JournalEntry.objects.count() == 1
    outcomes = sorted(CallbackLog.objects.values_list("outcome", flat=True))
    assert outcomes == [CallbackOutcome.APPLIED, CallbackOutcome.DUPLICATE, CallbackOutcome.DUPLICATE]
    # Duplicates of a paid prompt are not asked about again.
    assert len([c for c in responses.calls if c.request.url == DARAJA_QUERY]) == 1


@responses.activate
def test_a_confirmed_success_whose_callback_amount_disagrees_is_held_for_review(client, daraja):
    daraja_answers(daraja, query_answer(daraja))
    post(client, DARAJA_URL, daraja_success(daraja, amount=10))
    daraja.order.refresh_from_db()
    assert daraja.order.status == OrderStatus.NEEDS_REVIEW
    assert "KES 10" in daraja.order.status_reason and "KES 150" in daraja.order.status_reason
    entry = JournalEntry.objects.get()
    assert sorted(p.amount for p in entry.postings.all()) == [Decimal("-150.00"), Decimal("150.00")]
    assert entry.postings.filter(account__key="unallocated_receipts").exists()
    log = CallbackLog.objects.get()
    assert log.confirmation["disagreements"] and log.confirmation["callback"]["amount"] == "10.00"


@responses.activate
def test_a_callback_naming_another_phone_is_held_for_review(client, daraja):
    daraja_answers(daraja, query_answer(daraja))
    post(client, DARAJA_URL, daraja_success(daraja, phone="254799999999"))
    daraja.order.refresh_from_db()
    assert daraja.order.status == OrderStatus.NEEDS_REVIEW and "254799999999" in daraja.order.status_reason


@responses.activate
def test_payhero_receipt_disagreeing_with_its_transaction_status_is_held_for_review(client, payhero):
    responses.get(PAYHERO_STATUS, json=load("payhero/transaction_status_success.json"))  # SKQ96C7K7H
    body = load("payhero/callback_success.json")
    body["response"]["Amount"] = int(payhero.amount)
    assert post(client, PAYHERO_URL, body).status_code == 200
    payhero.order.refresh_from_db()
    assert payhero.order.status == OrderStatus.NEEDS_REVIEW
    assert "SAE3YULR0Y" in payhero.order.status_reason and "SKQ96C7K7H" in payhero.order.status_reason
    assert payhero.order.mpesa_receipt == "SKQ96C7K7H"  # the gateway's word, not the callback's


@responses.activate
def test_payhero_success_confirmed_by_transaction_status_pays(client, payhero):
    status = load("payhero/transaction_status_success.json")
    status["provider_reference"] = status["third_party_reference"] = "SAE3YULR0Y"
    responses.get(PAYHERO_STATUS, json=status)
    body = load("payhero/callback_success.json")
    body["response"]["Amount"] = int(payhero.amount)
    post(client, PAYHERO_URL, body)
    payhero.order.refresh_from_db()
    assert payhero.order.status == OrderStatus.PAID and payhero.order.mpesa_receipt == "SAE3YULR0Y"


def test_with_confirmation_off_the_callback_is_applied_as_it_says(client, settings):
    settings.STK_CONFIRM_SUCCESS = False
    stk = StkRequestFactory()
    post(client, DARAJA_URL, daraja_success(stk))
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.PAID and stk.order.mpesa_receipt == "UKR8X8UGJW"


# --- the simulator answers status queries like a gateway -----------------------------------------
def test_simulator_confirms_a_success_and_its_receipt(client, confirm_on):
    from ledger.gateways.simulator import receipt_for

    stk = StkRequestFactory()
    receipt = receipt_for(stk.checkout_request_id, stk.created_at)
    post(client, DARAJA_URL, daraja_success(stk, receipt=receipt))
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.PAID and stk.order.mpesa_receipt == receipt


def test_simulator_refuses_a_forged_success_for_a_prompt_its_customer_cancelled(client, confirm_on):
    stk = StkRequestFactory(order__payer_msisdn="254700000001")  # the simulated customer cancels
    post(client, DARAJA_URL, daraja_success(stk, receipt="UFAKE12345"))
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.FAILED and not JournalEntry.objects.exists()


# --- retries: lost work and slow confirmations --------------------------------------------------
@responses.activate
def test_gateway_down_then_up_the_sweeper_confirms_and_pays(client, daraja):
    down = requests.exceptions.ConnectionError("down")
    daraja_answers(daraja, down, down, down, query_answer(daraja))  # the query's own retries fail too
    post(client, DARAJA_URL, daraja_success(daraja))
    log = CallbackLog.objects.get()
    assert log.outcome == CallbackOutcome.CONFIRMING
    assert services.callbacks_sweep(now=timezone.now()) == {}  # not due yet
    counts = services.callbacks_sweep(now=log.next_attempt_at + timedelta(seconds=1))
    assert counts == {CallbackOutcome.APPLIED: 1}
    daraja.order.refresh_from_db()
    assert daraja.order.status == OrderStatus.PAID and JournalEntry.objects.count() == 1


@responses.activate
def test_never_confirmed_within_the_expiry_gives_up_without_paying(client, daraja, settings):
    daraja_answers(daraja, *[load("daraja/query_pending_error.json")] * 3)
    post(client, DARAJA_URL, daraja_success(daraja))
    log = CallbackLog.objects.get()
    later = log.received_at + timedelta(seconds=settings.STK_EXPIRE_AFTER + 1)
    assert services.callbacks_sweep(now=later) == {CallbackOutcome.UNCONFIRMED: 1}
    log.refresh_from_db()
    assert log.outcome == CallbackOutcome.UNCONFIRMED and log.next_attempt_at is None
    assert not JournalEntry.objects.exists()


def test_a_callback_stored_but_never_processed_is_applied_by_the_sweeper(confirm_on):
    """Stored while the database or the queue was down: nothing processed it."""
    stk = StkRequestFactory(gateway="simulator")
    from ledger.gateways.simulator import receipt_for

    log = CallbackLog.objects.create(
        source="daraja",
        body=json.dumps(daraja_success(stk, receipt=receipt_for(stk.checkout_request_id, stk.created_at))),
        next_attempt_at=timezone.now() - timedelta(seconds=1),
    )
    assert services.callbacks_sweep() == {CallbackOutcome.APPLIED: 1}
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.PAID
    log.refresh_from_db()
    assert log.attempts == 1 and log.outcome == CallbackOutcome.APPLIED
    assert services.callbacks_sweep() == {}  # done: never processed twice


def test_the_queued_task_and_the_sweeper_never_both_process_one_callback(confirm_on):
    stk = StkRequestFactory()
    log = CallbackLog.objects.create(source="daraja", body=json.dumps(daraja_success(stk)))
    assert services.callback_process_queued(log_id=log.pk) is not None
    assert services.callback_process_queued(log_id=log.pk) is None  # already taken


# --- hole 2: what failed authentication never applies ---------------------------------------------
def test_reprocessing_a_wrong_token_callback_never_applies_it(client, confirm_on):
    stk = StkRequestFactory()
    resp = post(client, "/api/callbacks/daraja/guessed-token/", daraja_success(stk))
    assert resp.status_code == 404
    log = CallbackLog.objects.get()
    assert not log.authenticated and log.outcome == CallbackOutcome.REJECTED
    assert services.callback_reprocess(log=log) == CallbackOutcome.REJECTED
    log.outcome = CallbackOutcome.RECEIVED  # even if someone flips its outcome in the database
    log.next_attempt_at = timezone.now() - timedelta(seconds=5)
    log.save()
    assert services.callbacks_sweep() == {}
    assert services.callback_process(log=log) == CallbackOutcome.REJECTED
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.PENDING_PAYMENT and not JournalEntry.objects.exists()


# --- hole 4: a send that timed out is unknown, not failed ----------------------------------------
@responses.activate
def test_a_timed_out_send_keeps_the_order_waiting_and_its_late_callback_pays_it(client, daraja, settings):
    from ledger.models import Order

    responses.get(DARAJA_TOKEN, json={"access_token": "tok", "expires_in": "3599"})
    responses.post(DARAJA_PUSH, body=requests.exceptions.ReadTimeout("slow"))
    order = Order.objects.create(
        bundle=daraja.order.bundle,
        price=daraja.order.price,
        payer_msisdn="254722000111",
        recipient_msisdn="254722000111",
        channel="stk",
        gateway="daraja",
    )
    stk = services.stk_send(order=order)
    assert stk.status == StkStatus.UNKNOWN and stk.checkout_request_id is None
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT and "may still reach the phone" in order.status_reason

    allowed, why = services.order_retry_allowed(order)
    assert not allowed and "may still reach the phone" in why
    with pytest.raises(services.OrderNotRetryable):
        services.order_retry(order=order)
    later = stk.created_at + timedelta(seconds=settings.STK_PROMPT_LIFETIME + 1)
    assert services.order_retry_allowed(order, now=later) == (True, "")

    # The customer paid the prompt anyway: its callback carries an id we never saw.
    stk.checkout_request_id = "ws_CO_UNSEEN0001"
    stk.merchant_request_id = "1-2-3"
    responses.post(DARAJA_QUERY, json=query_answer(stk))
    post(client, DARAJA_URL, daraja_success(stk))
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.mpesa_receipt == "UKR8X8UGJW"
    stk.refresh_from_db()
    assert stk.checkout_request_id == "ws_CO_UNSEEN0001" and stk.status == StkStatus.SUCCESS
    sent = [json.loads(c.request.body) for c in responses.calls if c.request.url == DARAJA_QUERY]
    assert sent[0]["CheckoutRequestID"] == "ws_CO_UNSEEN0001"  # confirmed by the gateway, not assumed


def test_a_callback_fitting_two_unknown_sends_is_left_for_a_person(client, confirm_on):
    first = StkRequestFactory(status=StkStatus.UNKNOWN, checkout_request_id=None, gateway_reference="")
    StkRequestFactory(
        status=StkStatus.UNKNOWN,
        checkout_request_id=None,
        gateway_reference="",
        order__bundle=first.order.bundle,
    )
    first.checkout_request_id, first.merchant_request_id = "ws_CO_WHICH", "9"
    post(client, DARAJA_URL, daraja_success(first))
    log = CallbackLog.objects.get()
    assert log.outcome == CallbackOutcome.UNKNOWN_ORDER and "2 prompts" in log.detail
    assert not JournalEntry.objects.exists()


def test_a_queued_prompt_cannot_be_sent_again():
    stk = StkRequestFactory()
    allowed, why = services.order_retry_allowed(stk.order)
    assert not allowed and "still waiting" in why


# --- holes 3 and 6: malformed figures are a malformed callback ---------------------------------
def _with_amount(stk, amount, *, drop_metadata=False):
    body = daraja_success(stk)
    if drop_metadata:
        del body["Body"]["stkCallback"]["CallbackMetadata"]
    else:
        body["Body"]["stkCallback"]["CallbackMetadata"]["Item"][0]["Value"] = amount
    return json.dumps(body, allow_nan=True)


@pytest.mark.parametrize(
    "amount",
    ["abc", [150], {}, True, None, -150, 0, float("nan"), float("inf"), 1e20, 150.004, 250000],
    ids=repr,
)
def test_a_daraja_success_with_a_bad_amount_is_400_rejected_and_pays_nothing(client, confirm_on, amount):
    stk = StkRequestFactory()
    resp = client.post(DARAJA_URL, data=_with_amount(stk, amount), content_type="application/json")
    assert resp.status_code == 400
    log = CallbackLog.objects.get()
    assert log.outcome == CallbackOutcome.REJECTED
    assert "Amount" in log.detail or "not a JSON number" in log.detail  # NaN/Infinity are not JSON
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.PENDING_PAYMENT and not JournalEntry.objects.exists()


def test_a_daraja_success_without_metadata_is_400(client, confirm_on):
    stk = StkRequestFactory()
    body = _with_amount(stk, None, drop_metadata=True)
    assert client.post(DARAJA_URL, data=body, content_type="application/json").status_code == 400
    assert not JournalEntry.objects.exists()


@pytest.mark.parametrize("amount", ["abc", None])
def test_a_payhero_success_with_a_bad_amount_is_400(client, payhero, amount):
    body = load("payhero/callback_success.json")
    body["response"]["Amount"] = amount
    assert post(client, PAYHERO_URL, body).status_code == 400
    payhero.order.refresh_from_db()
    assert payhero.order.status == OrderStatus.PENDING_PAYMENT and not JournalEntry.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe{}",  # not UTF-8
        b'{"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1\\u0000", "ResultCode": 0}}}',  # NUL
        b'{"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1", "ResultCode": NaN}}}',
        b"[" * 10_000 + b"]" * 10_000,  # deep JSON
        b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    ],
    ids=["invalid-utf8", "nul", "resultcode-nan", "deep-list", "deep-object"],
)
def test_hostile_bodies_are_400_never_200_or_500(client, confirm_on, raw):
    resp = client.post(DARAJA_URL, data=raw, content_type="application/json")
    assert resp.status_code == 400
    assert CallbackLog.objects.get().outcome == CallbackOutcome.REJECTED


@pytest.fixture(autouse=True)
def _books_balance_after_every_scenario(db):
    yield
    from ledger.books import books_check

    assert books_check() == []
