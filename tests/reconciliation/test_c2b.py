"""Daraja C2B confirmation/validation endpoints for the till."""

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from ledger.models import CallbackLog, CallbackOutcome, CallbackSource, EntryKind, JournalEntry
from reconciliation.models import ReceiptSource, TillReceipt

pytestmark = pytest.mark.django_db
DATA = Path(__file__).resolve().parents[1] / "data" / "reconciliation"
TOKEN = "test-c2b-token"
NAIROBI = ZoneInfo("Africa/Nairobi")
# A payment an hour ago, as Daraja writes it: Nairobi local time without a zone.
PAID_AT = (timezone.now() - dt.timedelta(hours=1)).astimezone(NAIROBI).replace(microsecond=0)
TRANS_TIME = PAID_AT.strftime("%Y%m%d%H%M%S")


@pytest.fixture(autouse=True)
def _token(settings):
    settings.C2B_CALLBACK_TOKEN = TOKEN
    settings.STK_CALLBACK_TOKEN = "test-stk-token"
    settings.CALLBACK_ALLOWED_IPS = []


def post(client, kind, body, token=TOKEN):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(f"/api/callbacks/c2b/{token}/{kind}", data=data, content_type="application/json")


def sample(name):
    """A recorded sample with its TransTime moved to an hour ago (older ones are out of the window)."""
    return json.loads((DATA / name).read_text()) | {"TransTime": TRANS_TIME}


def test_confirmation_records_receipt_books_it_and_acknowledges(client):
    response = post(client, "confirmation", sample("c2b_confirmation_masked.json"))
    assert response.status_code == 200
    assert response.json() == {"ResultCode": 0, "ResultDesc": "Success"}
    receipt = TillReceipt.objects.get(code="UCA7RKL51Z")
    assert receipt.amount == Decimal("250.00") and receipt.source == ReceiptSource.C2B
    assert receipt.payer_masked == "2547 ***** 126" and receipt.payer_name == "NICHOLAS"
    assert timezone.localtime(receipt.paid_at).isoformat() == PAID_AT.isoformat()
    entry = JournalEntry.objects.get(kind=EntryKind.TILL_RECEIPT, receipt_code="UCA7RKL51Z")
    assert {p.account.key: p.amount for p in entry.postings.all()} == {
        "mpesa_till": Decimal("250.00"),
        "unallocated_receipts": Decimal("-250.00"),
    }
    log = CallbackLog.objects.get(source=CallbackSource.C2B_CONFIRMATION)
    assert log.outcome == CallbackOutcome.APPLIED and log.receipt == "UCA7RKL51Z"
    assert json.loads(log.body)["TransID"] == "UCA7RKL51Z"


def test_replayed_confirmation_adds_nothing(client):
    body = sample("c2b_confirmation_masked.json")
    post(client, "confirmation", body)
    response = post(client, "confirmation", body)
    assert response.json() == {"ResultCode": 0, "ResultDesc": "Success"}
    assert TillReceipt.objects.filter(code="UCA7RKL51Z").count() == 1
    assert JournalEntry.objects.filter(kind=EntryKind.TILL_RECEIPT).count() == 1
    assert list(CallbackLog.objects.order_by("pk").values_list("outcome", flat=True)) == [
        CallbackOutcome.APPLIED,
        CallbackOutcome.DUPLICATE,
    ]


def test_hashed_msisdn_is_kept_as_text(client):
    post(client, "confirmation", sample("c2b_confirmation_hashed.json"))
    receipt = TillReceipt.objects.get(code="UCA9J225DR")
    assert receipt.payer_masked.startswith("ec59ead34e9e674f659b8602d4742a5053 *****")
    assert receipt.amount == Decimal("1500.00")


@pytest.mark.parametrize("token", ["guess", "test-stk-token"])
def test_wrong_token_is_refused_and_kept_only_as_an_unauthenticated_excerpt(client, token):
    response = post(client, "confirmation", sample("c2b_confirmation_masked.json"), token=token)
    assert response.status_code == 403
    log = CallbackLog.objects.get()
    assert log.outcome == CallbackOutcome.REJECTED and not log.authenticated
    assert "test-stk-token" not in log.path  # a real secret in the path is redacted
    assert not TillReceipt.objects.exists() and not JournalEntry.objects.exists()


def test_ip_outside_allow_list_is_refused(client, settings):
    settings.CALLBACK_ALLOWED_IPS = ["196.201.214.0/24"]
    response = post(client, "confirmation", sample("c2b_confirmation_masked.json"))
    assert response.status_code == 403
    assert not CallbackLog.objects.get().authenticated and not TillReceipt.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        "not json{",
        "[1, 2]",
        {"TransID": "UCA7RKL51Z", "TransTime": TRANS_TIME, "TransAmount": "abc"},
        {"TransID": "UCA7RKL51Z", "TransTime": "yesterday", "TransAmount": "10.00"},
        {"TransID": "", "TransTime": TRANS_TIME, "TransAmount": "10.00"},
        {"TransID": "UCA7RKL51Z", "TransTime": TRANS_TIME, "TransAmount": "-5"},
        # A real sample's own time is long outside the window.
        {"TransID": "UCA7RKL51Z", "TransTime": "20260310114512", "TransAmount": "10.00"},
    ],
)
def test_malformed_confirmation_is_400_and_stored_as_rejected(client, body):
    response = post(client, "confirmation", body)
    assert response.status_code == 400
    log = CallbackLog.objects.get()
    assert log.outcome == CallbackOutcome.REJECTED and log.detail and log.authenticated
    assert response.json() == {"ResultCode": 1, "ResultDesc": log.detail}
    assert not TillReceipt.objects.exists() and not JournalEntry.objects.exists()


def test_validation_accepts_with_documented_body_and_records_nothing(client):
    body = sample("c2b_confirmation_masked.json") | {"OrgAccountBalance": ""}
    response = post(client, "validation", body)
    assert response.status_code == 200
    assert response.json() == {"ResultCode": "0", "ResultDesc": "Accepted"}
    log = CallbackLog.objects.get()
    assert log.source == CallbackSource.C2B_VALIDATION and log.outcome == CallbackOutcome.APPLIED
    assert log.receipt == "UCA7RKL51Z" and log.next_attempt_at is None
    assert not TillReceipt.objects.exists()


@pytest.mark.parametrize(
    ("change", "code"),
    [({"TransAmount": "0"}, "C2B00013"), ({"TransID": "nope"}, "C2B00016"), ({"TransTime": "1"}, "C2B00016")],
)
def test_validation_rejects_an_implausible_payment_with_daraja_codes(client, change, code):
    response = post(client, "validation", sample("c2b_confirmation_masked.json") | change)
    assert response.status_code == 400
    assert response.json() == {"ResultCode": code, "ResultDesc": "Rejected"}
    assert CallbackLog.objects.get().outcome == CallbackOutcome.REJECTED
    assert not TillReceipt.objects.exists()


def test_get_is_not_allowed(client):
    assert client.get(f"/api/callbacks/c2b/{TOKEN}/confirmation").status_code == 405
