"""An unreachable database is an outage: 503 (try again), JSON on /api/, a plain page for staff.

The outage is simulated by making the view's first query raise what psycopg2 raises when the
server is gone (OperationalError) or the connection was closed under us (InterfaceError).
"""

import datetime as dt
import json
import logging
from decimal import Decimal
from unittest import mock

import pytest
from django.db import InterfaceError, OperationalError
from django.urls import reverse
from django.utils import timezone

from console.middleware import UNAVAILABLE
from ledger import books
from ledger.admin.books import JournalEntryAdmin
from ledger.models import CallbackLog, CallbackOutcome, JournalEntry
from reconciliation.models import TillReceipt

pytestmark = pytest.mark.django_db
DOWN = OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')
CLOSED = InterfaceError("connection already closed")


@pytest.fixture(autouse=True)
def _tokens(settings):
    settings.C2B_CALLBACK_TOKEN = "test-c2b-token"
    settings.STK_CALLBACK_TOKEN = "test-stk-token"
    settings.CALLBACK_ALLOWED_IPS = []


def _c2b_body() -> str:
    when = timezone.localtime(timezone.now() - dt.timedelta(minutes=5)).strftime("%Y%m%d%H%M%S")
    return json.dumps(
        {"TransID": "UCA7RKL51Z", "TransTime": when, "TransAmount": "250.00", "MSISDN": "2547***126"}
    )


def _is_503_json(response) -> bool:
    return (
        response.status_code == 503
        and response["Content-Type"] == "application/json"
        and response.json() == {"error": UNAVAILABLE}
        and response["Retry-After"]
    )


@pytest.mark.parametrize("error", [DOWN, CLOSED])
def test_admin_page_answers_a_short_503_page(client, superuser, error):
    client.force_login(superuser)
    with mock.patch.object(JournalEntryAdmin, "get_queryset", side_effect=error):
        response = client.get(reverse("admin:ledger_journalentry_changelist"))
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html") and response["Retry-After"]
    assert UNAVAILABLE in response.content.decode()


def test_an_outage_while_the_page_renders_is_also_a_503(client, superuser):
    """Admin list cells are computed while the template renders, after the view returned."""
    books.post_till_receipts_bulk([("UCA7RKL51Z", Decimal("250.00"), timezone.now())])
    client.force_login(superuser)
    with mock.patch.object(JournalEntryAdmin, "display_amount", side_effect=DOWN):
        response = client.get(reverse("admin:ledger_journalentry_changelist"))
    assert response.status_code == 503


@pytest.mark.parametrize("error", [DOWN, CLOSED])
def test_order_status_api_answers_503_json(client, error):
    with mock.patch("ledger.selectors.order_by_reference", side_effect=error):
        response = client.get("/api/orders/TXN-ABCDEFGH/")
    assert _is_503_json(response)


def test_c2b_confirmation_not_recorded_answers_503_so_daraja_retries(client):
    """The body was stored (committed) but the receipt could not be written: 503, and the
    retry records it once."""
    url = "/api/callbacks/c2b/test-c2b-token/confirmation"
    body = _c2b_body()
    with mock.patch("reconciliation.services.c2b.receipt_record_one", side_effect=DOWN):
        response = client.post(url, data=body, content_type="application/json")
    assert _is_503_json(response)
    assert not TillReceipt.objects.exists() and not JournalEntry.objects.exists()
    assert CallbackLog.objects.get().outcome == CallbackOutcome.RECEIVED  # kept for the worker

    retry = client.post(url, data=body, content_type="application/json")
    assert retry.status_code == 200 and TillReceipt.objects.count() == 1


def test_c2b_body_that_cannot_be_stored_answers_503(client):
    with mock.patch("reconciliation.api.callback_store", side_effect=DOWN):
        response = client.post(
            "/api/callbacks/c2b/test-c2b-token/confirmation",
            data=_c2b_body(),
            content_type="application/json",
        )
    assert _is_503_json(response)
    assert not TillReceipt.objects.exists()


def test_stk_callback_that_cannot_be_stored_answers_503(client):
    with mock.patch("ledger.api.callback_store", side_effect=CLOSED):
        response = client.post(
            "/api/callbacks/daraja/test-stk-token/", data="{}", content_type="application/json"
        )
    assert _is_503_json(response)


def test_stk_push_with_the_database_down_answers_503(client):
    with mock.patch("ledger.selectors.bundle_for_sale", side_effect=DOWN):
        response = client.post(
            "/api/stk-push/",
            data={"phone_number": "0712345678", "bundle": "daily-2gb"},
            content_type="application/json",
        )
    assert _is_503_json(response)


def test_the_outage_is_logged_once_with_its_cause(client, caplog):
    with caplog.at_level(logging.INFO), mock.patch("ledger.selectors.order_by_reference", side_effect=DOWN):
        client.get("/api/orders/TXN-ABCDEFGH/")
    records = [r for r in caplog.records if "TXN-ABCDEFGH" in r.getMessage()]
    assert len(records) == 1
    assert records[0].name == "console.middleware" and records[0].levelno == logging.ERROR
    assert records[0].exc_info[1] is DOWN


def test_other_errors_are_still_500(client):
    """Only an unreachable database is an outage; a bug stays a 500 and is reported as one."""
    client.raise_request_exception = False
    with mock.patch("ledger.selectors.order_by_reference", side_effect=RuntimeError("a bug")):
        response = client.get("/api/orders/TXN-ABCDEFGH/")
    assert response.status_code == 500
