"""Factories for orders and STK requests (bundles come from the one BundleFactory in tests.catalog)."""

import factory
import pytest

from ledger.models import Channel, Order, OrderStatus, StkRequest, StkStatus
from tests.catalog.factories import BundleFactory


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    bundle = factory.SubFactory(BundleFactory)
    price = factory.LazyAttribute(lambda o: o.bundle.price)
    payer_msisdn = "254712345678"
    recipient_msisdn = "254712345678"
    channel = Channel.STK
    gateway = "simulator"
    status = OrderStatus.PENDING_PAYMENT


class StkRequestFactory(factory.django.DjangoModelFactory):
    """A prompt the gateway accepted and that waits for its callback."""

    class Meta:
        model = StkRequest

    order = factory.SubFactory(OrderFactory)
    gateway = factory.LazyAttribute(lambda s: s.order.gateway or "simulator")
    phone = factory.LazyAttribute(lambda s: s.order.payer_msisdn)
    amount = factory.LazyAttribute(lambda s: s.order.price)
    checkout_request_id = factory.Sequence(lambda n: f"ws_CO_TEST{n:010d}")
    merchant_request_id = factory.Sequence(lambda n: f"29115-{n}-1")
    gateway_reference = factory.LazyAttribute(lambda s: s.checkout_request_id)
    status = StkStatus.QUEUED


@pytest.fixture
def ledger_settings(settings):
    """Order tests: the simulator answers at once, known callback tokens, an empty rate limiter.

    Import it into a test module and use `pytestmark = pytest.mark.usefixtures("ledger_settings")`.
    """
    from django.core.cache import cache

    cache.clear()  # the STK rate limiter counts in the default cache
    settings.PAYMENT_GATEWAY = "simulator"
    settings.SIMULATOR_CALLBACK_DELAY = 0
    settings.STK_CALLBACK_TOKEN = "test-token"
    settings.STK_CALLBACK_TOKEN_PREVIOUS = ""
    settings.STK_CALLBACK_TOKEN_PREVIOUS_UNTIL = ""
    settings.C2B_CALLBACK_TOKEN = "test-c2b-token"
    settings.CALLBACK_ALLOWED_IPS = []
    settings.STK_RATE_LIMIT = "1000/m"
    settings.PUBLIC_BASE_URL = "http://testserver"
    yield settings
    cache.clear()


def simulator_receipt(stk) -> str:
    """The receipt the simulator's status query confirms for `stk` (its callback carries the same)."""
    from ledger.gateways.simulator import receipt_for

    return receipt_for(stk.checkout_request_id, stk.created_at)


def daraja_callback_body(stk, *, code=0, amount=None, receipt=None, phone=None) -> dict:
    """A Daraja STK callback for `stk`, dated now (success carries the metadata items; failure none).

    The receipt defaults to the one the simulator confirms, so a success passes confirmation.
    """
    from django.utils import timezone

    from console.kernel.clock import NAIROBI

    receipt = receipt or simulator_receipt(stk)
    paid_at = int(timezone.now().astimezone(NAIROBI).strftime("%Y%m%d%H%M%S"))
    callback = {
        "MerchantRequestID": stk.merchant_request_id,
        "CheckoutRequestID": stk.checkout_request_id,
        "ResultCode": code,
        "ResultDesc": "The service request is processed successfully." if code == 0 else "Failed.",
    }
    if code == 0:
        callback["CallbackMetadata"] = {
            "Item": [
                {"Name": "Amount", "Value": float(amount if amount is not None else stk.amount)},
                {"Name": "MpesaReceiptNumber", "Value": receipt},
                {"Name": "Balance"},
                {"Name": "TransactionDate", "Value": paid_at},
                {"Name": "PhoneNumber", "Value": int(phone or stk.phone)},
            ]
        }
    return {"Body": {"stkCallback": callback}}
