"""console.kernel.rows.row_insert stores a new row as save() would: defaults, auto_now_add, JSON,
IP addresses, decimals, NULLs and text with quotes, on SQLite and PostgreSQL."""

from decimal import Decimal

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from console.kernel.rows import row_insert
from ledger.models import CallbackLog, CallbackOutcome

pytestmark = pytest.mark.django_db


def _log(**values):
    return CallbackLog(
        source="daraja",
        remote_ip="2001:db8::1",
        path="/api/callbacks/daraja/***/",
        headers={"User-Agent": 'it\'s 100% "quoted"', "n": 3},
        body='{"Body": "ndio hii ✓ -- DROP TABLE x"}',
        body_size=41,
        amount=Decimal("150.00"),
        next_attempt_at=timezone.now(),
        **values,
    )


def test_row_insert_stores_what_save_stores():
    before = timezone.now()
    inserted = row_insert(_log())
    saved = _log()
    saved.save()
    assert inserted.pk and inserted.pk != saved.pk and not inserted._state.adding
    a, b = CallbackLog.objects.get(pk=inserted.pk), CallbackLog.objects.get(pk=saved.pk)
    skip = {"id", "received_at", "next_attempt_at"}
    assert {k: v for k, v in model_to_dict(a).items() if k not in skip} == {
        k: v for k, v in model_to_dict(b).items() if k not in skip
    }
    assert a.received_at >= before  # auto_now_add
    assert a.outcome == CallbackOutcome.RECEIVED and a.confirmation == {} and a.attempts == 0  # defaults
    assert a.amount == Decimal("150.00") and a.processed_at is None and a.stk_request_id is None
    assert a.headers["User-Agent"] == 'it\'s 100% "quoted"'


def test_row_insert_gives_each_row_its_own_key():
    keys = {row_insert(_log(detail=str(n))).pk for n in range(5)}
    assert len(keys) == 5
    assert sorted(CallbackLog.objects.values_list("detail", flat=True)) == ["0", "1", "2", "3", "4"]
