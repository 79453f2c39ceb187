"""Daraja C2B confirmation/validation endpoints for the till."""

import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from ledger.models import CallbackLog, CallbackOutcome, CallbackSource, EntryKind, JournalEntry
from reconciliation.models import ReceiptSource, TillReceipt

pytestmark = pytest.mark.django_db
DATA = Path(__file__).resolve().parents[1] / "data" / "reconciliation"
TOKEN = "dev-callback-token"


@pytest.fixture(autouse=True)
def _token(settings):
    settings.CALLBACK_TOKEN = TOKEN
    settings.CALLBACK_ALLOWED_IPS = []


def post(client, kind, body, token=TOKEN):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(f"/api/callbacks/c2b/{token}/{kind}", data=data, content_type="application/json")


def sample(name):
    return json.loads((DATA / name).read_text())


def test_confirmation_records_receipt_books_it_and_acknowledges(client):
    response = post(client, "confirmation", sample("c2b_confirmation_masked.json"))
    assert response.status_code == 200
    assert response.json() == {"ResultCode": 0, "ResultDesc": "Success"}
    receipt = TillReceipt.objects.get(code="UCA7RKL51Z")
    assert receipt.amount == Decimal("250.00") and receipt.source == ReceiptSource.C2B
    assert receipt.payer_masked == "2547 ***** 126" and receipt.payer_name == "NICHOLAS"
    assert timezone.localtime(receipt.paid_at).isoformat() == "2026-03-10T11:45:12+03:00"
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


def test_wrong_token_is_refused_and_not_stored(client):
    response = post(client, "confirmation", sample("c2b_confirmation_masked.json"), token="guess")
    assert response.status_code == 403
    assert not CallbackLog.objects.exists() and not TillReceipt.objects.exists()


def test_ip_outside_allow_list_is_refused(client, settings):
    settings.CALLBACK_ALLOWED_IPS = ["196.201.214.0/24"]
    response = post(client, "confirmation", sample("c2b_confirmation_masked.json"))
    assert response.status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        "not json{",
        "[1, 2]",
        {"TransID": "UCA7RKL51Z", "TransTime": "20260310114512", "TransAmount": "abc"},
        {"TransID": "UCA7RKL51Z", "TransTime": "yesterday", "TransAmount": "10.00"},
        {"TransID": "", "TransTime": "20260310114512", "TransAmount": "10.00"},
        {"TransID": "UCA7RKL51Z", "TransTime": "20260310114512", "TransAmount": "-5"},
    ],
)
def test_malformed_confirmation_is_400_and_stored(client, body):
    response = post(client, "confirmation", body)
    assert response.status_code == 400
    log = CallbackLog.objects.get()
    assert log.outcome == CallbackOutcome.ERROR and log.detail
    assert not TillReceipt.objects.exists()


def test_validation_accepts_with_documented_body_and_records_nothing(client):
    body = sample("c2b_confirmation_masked.json") | {"OrgAccountBalance": ""}
    response = post(client, "validation", body)
    assert response.status_code == 200
    assert response.json() == {"ResultCode": "0", "ResultDesc": "Accepted"}
    assert CallbackLog.objects.get().source == CallbackSource.C2B_VALIDATION
    assert not TillReceipt.objects.exists()


def test_get_is_not_allowed(client):
    assert client.get(f"/api/callbacks/c2b/{TOKEN}/confirmation").status_code == 405
