"""20 identical callbacks at once on PostgreSQL: one paid order, one journal entry, one receipt."""

import json
import threading

import pytest
from django.db import connection
from django.test import Client

from ledger.models import CallbackLog, CallbackOutcome, JournalEntry, Order, OrderStatus
from tests.ledger.factories import (  # noqa: F401
    StkRequestFactory,
    daraja_callback_body,
    ledger_settings,
    simulator_receipt,
)

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("ledger_settings"),
]


def test_twenty_concurrent_duplicates_pay_once():
    assert connection.vendor == "postgresql"
    stk = StkRequestFactory()
    body = json.dumps(daraja_callback_body(stk))
    start = threading.Barrier(20)
    codes, errors = [], []

    def deliver():
        try:
            start.wait()
            resp = Client().post(
                "/api/callbacks/daraja/test-token/", data=body, content_type="application/json"
            )
            codes.append(resp.status_code)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert codes == [200] * 20
    order = Order.objects.get(pk=stk.order_id)
    assert order.status == OrderStatus.PAID and order.mpesa_receipt == simulator_receipt(stk)
    assert JournalEntry.objects.count() == 1
    outcomes = list(CallbackLog.objects.values_list("outcome", flat=True))
    assert len(outcomes) == 20
    assert outcomes.count(CallbackOutcome.APPLIED) == 1
    assert outcomes.count(CallbackOutcome.DUPLICATE) == 19
