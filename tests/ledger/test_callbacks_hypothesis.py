"""Property: whatever reaches the STK callback URLs, the answer is never a 500, and money moves
only for a well-formed success that the gateway's status query confirms, for the price asked."""

import json
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.kernel.clock import NAIROBI
from ledger.models import JournalEntry, Order, OrderStatus, Posting
from tests.ledger.factories import StkRequestFactory, ledger_settings, simulator_receipt  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ledger_settings")]
URLS = ["/api/callbacks/daraja/test-token/", "/api/callbacks/payhero/test-token/"]
HYPOTHESIS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
amounts = (
    json_scalars
    | st.sampled_from([150, 150.0, "150", "150.00", 150.004, 0, -150, 1e20, "abc", [150], {}, True])
    | st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str)
)
result_codes = (
    st.sampled_from([0, "0", 1032, "1032", 0.0, 0.5, "NaN", None, True, [0], {}, "4999"]) | json_scalars
)
receipts = st.sampled_from(["UFAKE12345", "ukr8x8ugjw", "", "SAE3\x00YULR", "X" * 40, None, 1234567890])


def _encode(body) -> bytes:
    return json.dumps(body, allow_nan=True).encode() if not isinstance(body, bytes) else body


def _post(client, url, body):
    return client.post(url, data=_encode(body), content_type="application/json")


def _stamp():
    return int(timezone.now().astimezone(NAIROBI).strftime("%Y%m%d%H%M%S"))


@pytest.fixture
def prompt(db):
    return StkRequestFactory()


def _assert_money_only_when_confirmed(prompt):
    order = Order.objects.get(pk=prompt.order_id)
    if JournalEntry.objects.exists():
        # The simulator confirms a success for this payer; whatever was booked is the price asked.
        assert order.status in (OrderStatus.PAID, OrderStatus.NEEDS_REVIEW)
        debits = sum(p.amount for p in Posting.objects.filter(amount__gt=0))
        assert debits == order.price
        assert order.amount_paid == order.price


@HYPOTHESIS
@given(body=json_values | st.binary(max_size=200), url=st.sampled_from(URLS))
def test_random_bodies_never_500_and_never_pay(prompt, body, url):
    resp = _post(Client(), url, body)
    assert resp.status_code in (200, 400, 413)
    assert not JournalEntry.objects.exists()


@HYPOTHESIS
@given(amount=amounts, code=result_codes, receipt=receipts, date=st.sampled_from(["now", 10101000000, "x"]))
def test_daraja_shaped_bodies_with_every_edge_never_500_and_pay_only_the_price(
    prompt, amount, code, receipt, date
):
    items = [
        {"Name": "Amount", "Value": amount},
        {"Name": "MpesaReceiptNumber", "Value": receipt},
        {"Name": "TransactionDate", "Value": _stamp() if date == "now" else date},
        {"Name": "PhoneNumber", "Value": int(prompt.phone)},
    ]
    body = {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": prompt.merchant_request_id,
                "CheckoutRequestID": prompt.checkout_request_id,
                "ResultCode": code,
                "ResultDesc": "x",
                "CallbackMetadata": {"Item": items},
            }
        }
    }
    resp = _post(Client(), URLS[0], body)
    assert resp.status_code in (200, 400)
    _assert_money_only_when_confirmed(prompt)


def test_a_well_formed_confirmed_success_does_pay(prompt):
    """The property above is not vacuous: the well-formed success it allows does move money."""
    body = {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": prompt.merchant_request_id,
                "CheckoutRequestID": prompt.checkout_request_id,
                "ResultCode": 0,
                "ResultDesc": "ok",
                "CallbackMetadata": {
                    "Item": [
                        {"Name": "Amount", "Value": 150},
                        {"Name": "MpesaReceiptNumber", "Value": simulator_receipt(prompt)},
                        {"Name": "TransactionDate", "Value": _stamp()},
                        {"Name": "PhoneNumber", "Value": int(prompt.phone)},
                    ]
                },
            }
        }
    }
    assert _post(Client(), URLS[0], body).status_code == 200
    prompt.order.refresh_from_db()
    assert prompt.order.status == OrderStatus.PAID and prompt.order.amount_paid == Decimal("150.00")
