"""A matcher run's stale decision never overwrites a claim another worker verified meanwhile.

The run decides a claim (here: still pending, no receipt yet), then writes its decisions for the
claims still open. Another worker, which saw the receipt arrive, holds the claim locked while it
verifies it. The run's write must wait for that verification and then leave the claim alone; a
non-locking "still open?" check followed by the UPDATE wrote "pending" over "verified" (and the
next run then called the claim's own receipt "already used"), seen in
tests/console/test_processes_postgres.py.
"""

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from reconciliation.models import ClaimStatus, ReceiptSource, TillReceipt
from reconciliation.services import decisions, matcher

from .factories import NAIROBI, ClaimFactory, code_for

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]
DEADLINE = 20  # seconds; nothing here should take more than a fraction of one


def _waiting_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return bool(row) and row[0] == "Lock"


def test_a_run_never_writes_over_a_verification_committed_while_it_decided(bundles, monkeypatch):
    assert connection.vendor == "postgresql"
    paid_at = timezone.now() - dt.timedelta(minutes=3)
    claim = ClaimFactory(code=code_for(paid_at.astimezone(NAIROBI).date()), claimed_at=timezone.now())
    run_pid = connection.connection.info.backend_pid  # the run goes on in this thread's connection
    locked, errors = threading.Event(), []

    def verify_while_the_run_writes():
        """The other worker: the receipt arrives and it verifies the claim, holding the claim's
        lock until the run is waiting on it, then commits."""
        try:
            with transaction.atomic():
                receipt = TillReceipt.objects.create(
                    code=claim.code, amount=Decimal("250.00"), paid_at=paid_at, source=ReceiptSource.C2B
                )
                decisions.claim_verify_auto(
                    claim_id=claim.pk,
                    receipt_id=receipt.pk,
                    bundle_id=bundles["daily-5gb"].pk,
                    explanation={"summary": "test"},
                )
                locked.set()
                deadline = time.monotonic() + DEADLINE
                while not _waiting_on_a_lock(run_pid) and time.monotonic() < deadline:
                    time.sleep(0.02)
        except Exception as exc:  # surfaced below
            errors.append(exc)
            locked.set()
        finally:
            connections.close_all()

    other = threading.Thread(target=verify_while_the_run_writes)
    record = matcher._record

    def record_then_let_the_other_worker_verify(claim_, decision, *args):
        record(claim_, decision, *args)
        if claim_.pk == claim.pk and not other.is_alive() and not locked.is_set():
            assert decision.status == ClaimStatus.PENDING  # decided before the receipt existed
            other.start()
            assert locked.wait(DEADLINE)

    monkeypatch.setattr(matcher, "_record", record_then_let_the_other_worker_verify)
    matcher.claims_reconcile(trigger="test")
    other.join(DEADLINE)

    assert not other.is_alive() and errors == []
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.VERIFIED and claim.order_id is not None
    assert TillReceipt.objects.get(code=claim.code).order_id == claim.order_id
