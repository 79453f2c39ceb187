"""Logs never carry a callback token, a credential or a full phone number.

The representative traffic of the callback and API tests runs with every logger at DEBUG: an STK
push through the Daraja gateway (credentials in use), its callback with the payer's number, a
refused and a malformed callback (Django logs their URL), a C2B confirmation with an unmasked
MSISDN, and application log lines quoting numbers in each written form. What the configured
(redacting) handler writes, and what reaches caplog, holds none of the secrets or numbers.
"""

import base64
import datetime as dt
import io
import json
import logging
from decimal import Decimal

import pytest
import responses
from django.utils import timezone

from console.kernel.clock import NAIROBI
from console.logging import RedactSecretsFilter
from ledger.models import Order, StkRequest
from tests.ledger.factories import BundleFactory, ledger_settings  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ledger_settings")]

STK_TOKEN = "stkTok-Zq3m8Rk1Vb7Tn2Lp5Xw9Hc4Jd6"
C2B_TOKEN = "c2bTok-Yt5n1Qe8Wr3Uo7Ip2As6Df9Gh4"
CONSUMER_KEY = "ck-Live-8f2a6c1e9b7d4a3f"
CONSUMER_SECRET = "cs-Live-1d4e7a0b3c6f9e2d"
PASSKEY = "pk-Live-bfb279f9aa9bdbcf158e97dd71a467cd"
ACCESS_TOKEN = "at-Live-c9SQxWWhmdVRlyh0zh8gZDTk"
BASE = "https://sandbox.safaricom.co.ke"
# The same customers in every form they are written in.
PAYER = "254712345678"
PAYER_FORMS = ["254712345678", "0712345678", "0712 345 678", "+254 712 345 678", "+254712345678"]
RECIPIENT = "254110987654"
C2B_PAYER = "254722333444"


@pytest.fixture
def live_like(settings):
    settings.STK_CALLBACK_TOKEN = STK_TOKEN
    settings.C2B_CALLBACK_TOKEN = C2B_TOKEN
    settings.PAYMENT_GATEWAY = "daraja"
    settings.DARAJA_BASE_URL = BASE
    settings.DARAJA_CONSUMER_KEY = CONSUMER_KEY
    settings.DARAJA_CONSUMER_SECRET = CONSUMER_SECRET
    settings.DARAJA_PASSKEY = PASSKEY
    settings.DARAJA_SHORTCODE = "174379"
    settings.DARAJA_PARTY_B = "6944804"
    settings.STK_CONFIRM_SUCCESS = False
    return settings


@pytest.fixture
def every_log(caplog):
    """Every logger at DEBUG; returns (caplog, stream of the configured redacting root handler)."""
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    handlers = [
        h for h in logging.root.handlers if any(isinstance(f, RedactSecretsFilter) for f in h.filters)
    ]
    assert handlers, "settings.LOGGING gives the root logger a redacting handler"
    stream = io.StringIO()
    previous = [h.setStream(stream) for h in handlers]
    yield caplog, stream
    for handler, old in zip(handlers, previous, strict=True):
        handler.setStream(old)


def _post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


@responses.activate
def test_callbacks_and_api_traffic_log_no_token_credential_or_full_phone(client, live_like, every_log):
    caplog, handler_output = every_log
    responses.get(f"{BASE}/oauth/v1/generate", json={"access_token": ACCESS_TOKEN, "expires_in": 3599})
    responses.post(
        f"{BASE}/mpesa/stkpush/v1/processrequest",
        json={
            "MerchantRequestID": "2654-4b64-97ff",
            "CheckoutRequestID": "ws_CO_LOGS_1",
            "ResponseCode": "0",
            "ResponseDescription": "Success. Request accepted for processing",
            "CustomerMessage": "Success. Request accepted for processing",
        },
    )
    BundleFactory(slug="daily-2gb", price=Decimal("150"))

    # The storefront's STK push, through the Daraja gateway (token fetch + push with the passkey).
    resp = _post(
        client,
        "/api/stk-push/",
        {"phone_number": "0712 345 678", "recipient_phone": "0110987654", "bundle": "daily-2gb"},
    )
    assert resp.status_code == 201, resp.content
    stk = StkRequest.objects.get()
    order = Order.objects.get()
    assert order.payer_msisdn == PAYER and order.recipient_msisdn == RECIPIENT

    # Its callback, carrying the payer's full number.
    paid_at = int(timezone.now().astimezone(NAIROBI).strftime("%Y%m%d%H%M%S"))
    callback = {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": stk.merchant_request_id,
                "CheckoutRequestID": stk.checkout_request_id,
                "ResultCode": 0,
                "ResultDesc": "The service request is processed successfully.",
                "CallbackMetadata": {
                    "Item": [
                        {"Name": "Amount", "Value": 150.0},
                        {"Name": "MpesaReceiptNumber", "Value": "UCB1LOGS2Z"},
                        {"Name": "TransactionDate", "Value": paid_at},
                        {"Name": "PhoneNumber", "Value": int(PAYER)},
                    ]
                },
            }
        }
    }
    assert _post(client, f"/api/callbacks/daraja/{STK_TOKEN}/", callback).status_code == 200
    # Refused (wrong token) and malformed callbacks: django.request logs their URLs.
    assert _post(client, f"/api/callbacks/daraja/{STK_TOKEN[:-2]}/", callback).status_code == 404
    resp = client.post(
        f"/api/callbacks/daraja/{STK_TOKEN}/", data=f"not json {PAYER}", content_type="application/json"
    )
    assert resp.status_code == 400

    # A C2B confirmation with the payer's number unmasked (as Daraja sent it before 2021).
    when = (timezone.now() - dt.timedelta(minutes=5)).astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")
    c2b = {
        "TransactionType": "Buy Goods",
        "TransID": "UCC2LOGS3Z",
        "TransTime": when,
        "TransAmount": "250.00",
        "BusinessShortCode": "6944804",
        "BillRefNumber": "",
        "MSISDN": C2B_PAYER,
        "FirstName": "AMINA",
    }
    assert _post(client, f"/api/callbacks/c2b/{C2B_TOKEN}/confirmation", c2b).status_code == 200

    # Application log lines quoting numbers and secrets, as a careless one might.
    app = logging.getLogger("ledger.services")
    app.info("STK for %s to %s", "0712345678", "+254 110 987 654")
    app.warning("payer %s / %s / %s", *PAYER_FORMS[2:])
    app.debug({"MSISDN": C2B_PAYER, "phone": int(PAYER)})
    basic = base64.b64encode(f"{CONSUMER_KEY}:{CONSUMER_SECRET}".encode()).decode()
    app.error("gateway said %s", f"{CONSUMER_KEY}:{CONSUMER_SECRET} {PASSKEY} Authorization: Basic {basic}")
    try:
        raise ValueError(f"callback https://x/api/callbacks/c2b/{C2B_TOKEN}/confirmation from {PAYER}")
    except ValueError:
        logging.getLogger("reconciliation").exception("failed for 0722 333 444")

    assert len(caplog.records) >= 6
    forbidden = [
        ACCESS_TOKEN,
        STK_TOKEN,
        STK_TOKEN[:-2],
        C2B_TOKEN,
        CONSUMER_KEY,
        CONSUMER_SECRET,
        PASSKEY,
        basic,
        *PAYER_FORMS,
        RECIPIENT,
        "0110987654",
        C2B_PAYER,
        "0722 333 444",
        "712345678",
        "722333444",
        "110987654",
    ]
    for text in (caplog.text, handler_output.getvalue(), "\n".join(r.getMessage() for r in caplog.records)):
        leaks = [f for f in forbidden if f in text]
        assert leaks == [], f"leaked {leaks} in:\n{text}"
    # Masked, not dropped: support can still tell which customer a line is about.
    assert "2547***678" in caplog.text and "2541***654" in caplog.text and "2547***444" in caplog.text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("254712345678", "2547***678"),
        ("msisdn=254112345678,", "msisdn=2541***678,"),
        ("0712345678", "2547***678"),
        ("0112 345 678", "2541***678"),
        ("+254 712 345 678", "2547***678"),
        ("+254-712-345-678", "2547***678"),
        ("00254712345678", "2547***678"),
        ("254 (0)712 345 678", "2547***678"),
        ("phone=%2B254712345678", "phone=2547***678"),
        ("to 712345678 now", "to 2547***678 now"),
        ('{"PhoneNumber": 254708374149}', '{"PhoneNumber": 2547***149}'),
    ],
)
def test_every_written_form_of_a_number_is_masked(text, masked):
    from console.kernel.redact import mask_phone_numbers

    assert mask_phone_numbers(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "SAE3YULR0Y",
        "TXN712345678",
        "20191122063845",
        "2547***678",
        "2547 ***** 126",
        "Ksh 1,500.00",
        "id 4521",
    ],
)
def test_codes_timestamps_amounts_and_masked_numbers_are_left_alone(text):
    from console.kernel.redact import mask_phone_numbers

    assert mask_phone_numbers(text) == text
