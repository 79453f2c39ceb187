"""The simulator answers through the same callback endpoint a real gateway uses."""

import pytest
import responses
from django.test import Client

from ledger import services, tasks
from ledger.models import CallbackLog, CallbackOutcome, OrderStatus
from tests.ledger.factories import OrderFactory, ledger_settings  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ledger_settings")]


def route_to_django(request):
    resp = Client().post(request.path_url, data=request.body, content_type="application/json")
    return resp.status_code, {}, resp.content


@pytest.fixture
def callbacks_via_django():
    with responses.RequestsMock() as mock:
        mock.add_callback(
            responses.POST, "http://testserver/api/callbacks/daraja/test-token/", callback=route_to_django
        )
        yield mock


@pytest.mark.parametrize(
    ("phone", "status", "reason"),
    [
        ("254712345678", OrderStatus.PAID, ""),
        ("254700000001", OrderStatus.FAILED, "You cancelled the request"),
        ("254700000002", OrderStatus.FAILED, "Phone unreachable"),
        ("254700000003", OrderStatus.FAILED, "Insufficient M-Pesa balance"),
        ("254700000004", OrderStatus.FAILED, "Wrong M-Pesa PIN"),
    ],
)
def test_simulated_callback_goes_through_the_endpoint(callbacks_via_django, phone, status, reason):
    order = OrderFactory(payer_msisdn=phone)
    stk = services.stk_send(order=order)
    assert tasks.simulator_callback_deliver(stk.pk) == 200
    order.refresh_from_db()
    assert order.status == status and order.status_reason == reason
    log = CallbackLog.objects.get()
    assert log.outcome == CallbackOutcome.APPLIED and log.source == "daraja"


def test_stk_send_queues_the_simulated_callback_after_commit(
    callbacks_via_django, django_capture_on_commit_callbacks
):
    order = OrderFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.stk_send(order=order)  # Q_SYNC runs the django-q2 task inline
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert order.mpesa_receipt


def test_delivering_twice_is_harmless(callbacks_via_django):
    stk = services.stk_send(order=OrderFactory())
    tasks.simulator_callback_deliver(stk.pk)
    assert tasks.simulator_callback_deliver(stk.pk) is None  # already resolved: nothing sent
    assert CallbackLog.objects.count() == 1
