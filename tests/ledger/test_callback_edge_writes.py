"""The callback edge stores and queues in one transaction: one insert, one enqueue, one commit.

Nothing else touches the database in the request (the worker does the rest), and a callback is
acknowledged only when both its row and its task are committed.
"""

import json
from unittest import mock

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_q import tasks as q_tasks
from django_q.models import OrmQ

from ledger.models import CallbackLog, CallbackOutcome
from tests.ledger.factories import StkRequestFactory, daraja_callback_body, ledger_settings  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ledger_settings")]
URL = "/api/callbacks/daraja/test-token/"


def _queued(func, *args, **kwargs):
    """async_task through the real ORM broker (the test settings run tasks inline); notes whether
    the row it queues is still uncommitted, i.e. row and task commit together."""
    IN_TRANSACTION.append(connection.in_atomic_block)
    return q_tasks.async_task(func, *args, sync=False, **kwargs)


IN_TRANSACTION: list[bool] = []


def _post(client, stk):
    body = json.dumps(daraja_callback_body(stk))
    return client.post(URL, data=body, content_type="application/json")


def test_one_insert_one_enqueue_one_commit(client):
    stk = StkRequestFactory()
    IN_TRANSACTION.clear()
    with (
        mock.patch("ledger.services.callbacks.async_task", _queued),
        CaptureQueriesContext(connection) as ctx,
    ):
        response = _post(client, stk)
    assert response.status_code == 200
    statements = [q["sql"].split()[0].upper() for q in ctx.captured_queries]
    writes = [
        q["sql"] for q in ctx.captured_queries if q["sql"].upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert len(writes) == 2
    assert "ledger_callbacklog" in writes[0] and "django_q_ormq" in writes[1]
    assert "SELECT" not in statements  # nothing read: no order, no prompt, no status query
    log = CallbackLog.objects.get()
    assert log.outcome == CallbackOutcome.RECEIVED and log.attempts == 0
    task = OrmQ.objects.get()
    assert task.task["args"] == (log.pk,)
    assert IN_TRANSACTION == [True]  # queued inside the transaction that stored the row


def test_a_failing_enqueue_acknowledges_nothing():
    """Row and task commit together or not at all: no 200 for a callback that is not queued."""
    stk = StkRequestFactory()

    def broken(*args, **kwargs):
        OrmQ.objects.create(key="x", payload="half-written", lock=None)  # written, then refused
        raise RuntimeError("queue down")

    with mock.patch("ledger.services.callbacks.async_task", broken):
        response = _post(Client(raise_request_exception=False), stk)
    assert response.status_code >= 500
    assert not CallbackLog.objects.exists() and not OrmQ.objects.exists()
