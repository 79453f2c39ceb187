"""The chase: prompts without a callback are asked about, backed off, applied or expired."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import responses
from django.core.cache import cache

from ledger import services, tasks
from ledger.models import JournalEntry, OrderStatus, StkStatus
from tests.ledger.factories import StkRequestFactory, ledger_settings  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ledger_settings")]
DATA = Path(__file__).resolve().parent.parent / "data"
STATUS_URL = "https://backend.payhero.co.ke/api/v2/transaction-status"
DARAJA_QUERY = "https://sandbox.safaricom.co.ke/mpesa/stkpushquery/v1/query"
DARAJA_TOKEN = "https://sandbox.safaricom.co.ke/oauth/v1/generate"


@pytest.fixture
def payhero(settings):
    settings.PAYHERO_API_USERNAME, settings.PAYHERO_API_PASSWORD, settings.PAYHERO_CHANNEL_ID = (
        "u",
        "p",
        "911",
    )
    settings.STK_CHASE_AFTER = 120
    settings.STK_EXPIRE_AFTER = 1800
    return StkRequestFactory(gateway="payhero", order__gateway="payhero", gateway_reference="6b71cb8b")


@pytest.fixture
def daraja(settings):
    settings.DARAJA_CONSUMER_KEY, settings.DARAJA_CONSUMER_SECRET = "key", "secret"
    settings.DARAJA_SHORTCODE, settings.DARAJA_PASSKEY, settings.DARAJA_PARTY_B = "174379", "pass", "6944804"
    return StkRequestFactory(gateway="daraja", order__gateway="daraja")


def load(name):
    return json.loads((DATA / name).read_text())


@responses.activate
def test_timeout_then_5xx_then_an_answer_pays_the_order(payhero):
    responses.get(STATUS_URL, body=requests.exceptions.ReadTimeout("slow"))
    responses.get(STATUS_URL, json={"error": "down"}, status=500)
    responses.get(STATUS_URL, json=load("payhero/transaction_status_success.json"))
    t0 = payhero.created_at + timedelta(seconds=121)

    assert services.stk_chase(now=t0)["errors"] == 1
    payhero.refresh_from_db()
    assert payhero.status == StkStatus.QUEUED and payhero.query_count == 1
    assert "did not answer" in payhero.last_query_result["error"]
    first_wait = payhero.next_query_at - t0

    # Not due yet: nothing is asked.
    assert services.stk_chase(now=t0 + timedelta(seconds=1))["queried"] == 0

    t1 = payhero.next_query_at
    assert services.stk_chase(now=t1)["errors"] == 1
    payhero.refresh_from_db()
    assert payhero.next_query_at - t1 > first_wait  # backs off
    assert "HTTP 500" in payhero.last_query_result["error"]

    assert services.stk_chase(now=payhero.next_query_at)["applied"] == 1
    payhero.refresh_from_db()
    payhero.order.refresh_from_db()
    assert payhero.status == StkStatus.SUCCESS
    assert payhero.order.status == OrderStatus.PAID and payhero.order.mpesa_receipt == "SKQ96C7K7H"
    assert JournalEntry.objects.count() == 1
    assert len(responses.calls) == 3


@responses.activate
def test_a_prompt_younger_than_chase_after_is_left_alone(payhero):
    assert services.stk_chase(now=payhero.created_at + timedelta(seconds=60))["queried"] == 0
    assert len(responses.calls) == 0


@responses.activate
def test_failed_status_fails_the_order(payhero):
    responses.get(STATUS_URL, json=load("payhero/transaction_status_failed.json"))
    services.stk_chase(now=payhero.created_at + timedelta(seconds=200))
    payhero.order.refresh_from_db()
    assert payhero.order.status == OrderStatus.FAILED


@responses.activate
def test_still_queued_after_expire_after_expires_keeping_the_last_answer(payhero):
    responses.get(STATUS_URL, json=load("payhero/transaction_status_queued.json"))
    counts = services.stk_chase(now=payhero.created_at + timedelta(seconds=1801))
    assert counts["expired"] == 1
    payhero.refresh_from_db()
    payhero.order.refresh_from_db()
    assert payhero.status == StkStatus.EXPIRED
    assert payhero.last_query_result["status"] == "pending"
    assert payhero.last_query_result["raw"]["status"] == "QUEUED"
    assert payhero.order.status == OrderStatus.EXPIRED
    assert payhero.order.status_reason == services.NO_ANSWER.format(minutes=30)


@responses.activate
def test_gateway_down_past_expiry_still_expires_without_crashing(payhero):
    responses.get(STATUS_URL, body=requests.exceptions.ConnectionError("refused"))
    assert services.stk_chase(now=payhero.created_at + timedelta(seconds=1801))["expired"] == 1
    payhero.refresh_from_db()
    assert "error" in payhero.last_query_result


@responses.activate
def test_daraja_query_cancelled_fails_the_order(daraja):
    responses.get(DARAJA_TOKEN, json={"access_token": "tok", "expires_in": "3599"})
    responses.post(DARAJA_QUERY, json=load("daraja/query_cancelled.json"))
    services.stk_chase(now=daraja.created_at + timedelta(seconds=200))
    daraja.order.refresh_from_db()
    assert daraja.order.status == OrderStatus.FAILED
    assert daraja.order.status_reason == "You cancelled the request"


@responses.activate
def test_daraja_being_processed_waits(daraja):
    responses.get(DARAJA_TOKEN, json={"access_token": "tok", "expires_in": "3599"})
    responses.post(DARAJA_QUERY, json=load("daraja/query_pending_error.json"), status=500)
    counts = services.stk_chase(now=daraja.created_at + timedelta(seconds=200))
    assert counts["queried"] == 1 and counts["applied"] == 0
    daraja.refresh_from_db()
    assert daraja.status == StkStatus.QUEUED and daraja.next_query_at is not None


def test_the_chase_never_overlaps_itself(payhero):
    cache.add(services.CHASE_LOCK, "1", timeout=60)  # another worker is chasing
    assert services.stk_chase(now=payhero.created_at + timedelta(seconds=200))["queried"] == 0


def test_the_scheduled_task_runs_the_service_with_the_simulator():
    stk = StkRequestFactory()
    stk.created_at = stk.created_at - timedelta(hours=1)
    stk.save(update_fields=["created_at"])
    counts = tasks.stk_chase()
    # The simulator's status query answers like a real gateway's: this prompt was paid.
    assert counts["applied"] == 1 and counts["expired"] == 0
    stk.refresh_from_db()
    stk.order.refresh_from_db()
    assert stk.status == "success" and stk.order.status == "paid" and stk.order.mpesa_receipt
