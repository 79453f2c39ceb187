"""Killed background jobs: a statement import or a matcher run whose worker died is seen as dead
(no heartbeat), is resumed or closed from the admin, and finishes with nothing doubled or lost."""

import datetime as dt
from decimal import Decimal
from unittest import mock

import pytest
from django.core.management import call_command
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from console.models import AuditEvent
from ledger.models import EntryKind, JournalEntry, Order
from reconciliation.models import (
    HEARTBEAT_STALE_SECONDS,
    ClaimStatus,
    ImportStatus,
    ReconciliationRun,
    RunStatus,
    StatementImport,
    TillReceipt,
)
from reconciliation.services import runs
from reconciliation.services import statements as svc
from reconciliation.services.close import day_figures
from reconciliation.services.errors import ImportRefused, ReconciliationError
from reconciliation.services.matcher import claims_reconcile

from .factories import NOW, ClaimFactory, receipt

pytestmark = pytest.mark.django_db
ROWS = 5500  # six chunks of svc.CHUNK; more than ASYNC_ROWS are left after three, so resume queues a task
LONG_AGO = dt.timedelta(seconds=HEARTBEAT_STALE_SECONDS * 5)


def statement(rows: int, prefix: str = "UCA") -> bytes:
    """An Org-portal statement of ``rows`` Completed paid-in rows with unique receipt codes."""
    header = (
        "Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,Withdrawn,Balance,"
        "Balance Confirmed,Reason Type,Other Party Info,Linked Transaction ID,A/C No.\n"
    )
    lines = [
        f"{prefix}{i:07d},10-03-2026 {8 + i // 3600 % 10:02d}:{i // 60 % 60:02d}:{i % 60:02d},,"
        f"Merchant Payment from 0712***{i % 1000:03d} - CUSTOMER {i},Completed,150.00,,,TRUE,"
        "Customer Merchant Payment,,,\n"
        for i in range(rows)
    ]
    return (header + "".join(lines)).encode()


class Killed(BaseException):
    """SIGKILL stand-in: not an Exception, so the import cannot record it as failed."""


def killed_after(chunks: int):
    """Patch the chunk insert so the worker dies inside chunk ``chunks + 1`` (its rows roll back)."""
    real = svc._insert_statement_rows
    calls = {"n": 0}

    def insert(rows, imp):
        calls["n"] += 1
        inserted = real(rows, imp)
        if calls["n"] > chunks:
            raise Killed
        return inserted

    return mock.patch.object(svc, "_insert_statement_rows", side_effect=insert)


def import_killed_at(rows: int = ROWS, chunks: int = 3) -> StatementImport:
    """A statement whose worker died after ``chunks`` committed chunks, 10 minutes ago."""
    imp = svc.statement_import_create(data=statement(rows), filename="big.csv")
    with killed_after(chunks), pytest.raises(Killed):
        svc.statement_import_start(import_id=imp.pk, inline=True)
    StatementImport.objects.filter(pk=imp.pk).update(heartbeat_at=timezone.now() - LONG_AGO)
    imp.refresh_from_db()
    return imp


def till_entries():
    return JournalEntry.objects.filter(kind=EntryKind.TILL_RECEIPT)


def assert_each_receipt_once_with_one_entry(rows: int):
    assert TillReceipt.objects.count() == rows
    assert till_entries().count() == rows
    per_code = till_entries().values("receipt_code").annotate(n=Count("id"))
    assert {row["n"] for row in per_code} == {1} and per_code.count() == rows
    assert not till_entries().exclude(receipt_code__in=TillReceipt.objects.values("code")).exists()
    call_command("check_books", stdout=open("/dev/null", "w"))  # noqa: SIM115  raises when off
    assert_close_day_agrees_with_the_books(rows)


def assert_close_day_agrees_with_the_books(rows: int, day=dt.date(2026, 3, 10)):
    """The day's close: every receipt counted once, the till's paid-in equal to the books'."""
    figures = day_figures(day=day)
    assert figures["receipts"] == rows
    assert figures["paid_in"] == figures["books_till_movement"] == f"{Decimal('150.00') * rows:.2f}"
    assert [d["check"] for d in figures["differences"]] in ([], ["paid_in_vs_delivered"])


def url(name, *args):
    return reverse(f"admin:reconciliation_{name}", args=args)


# ---- statement import ----------------------------------------------------------------------------
def test_killed_import_keeps_whole_chunks_and_stays_running():
    imp = import_killed_at()
    assert imp.status == ImportStatus.RUNNING and imp.rows_done == 3 * svc.CHUNK
    # The receipts and journal entries of the committed chunks, and nothing of the one it died in.
    assert TillReceipt.objects.filter(statement_import=imp).count() == 3 * svc.CHUNK
    assert till_entries().count() == 3 * svc.CHUNK
    assert imp.is_dead() and imp.is_resumable()
    assert list(StatementImport.objects.died()) == [imp]


def test_admin_shows_the_dead_import_and_resume_finishes_it_exactly_once(
    client_for, finance, django_capture_on_commit_callbacks
):
    imp = import_killed_at()
    client = client_for(finance)
    page = client.get(url("statementimport_change", imp.pk)).content.decode()
    assert "Stopped at 3,000 of 5,500 rows (no heartbeat since" in page
    assert "Resume import" in page and "Import these rows" not in page
    listed = client.get(url("statementimport_changelist"), {"worker": "died"}).content.decode()
    assert "big.csv" in listed and "Stopped (worker died)" in listed

    confirm = client.get(url("statementimport_resume_import", imp.pk)).content.decode()
    assert "Resume the import from row 3,001?" in confirm and "exactly once" in confirm
    assert imp.attempts == 1 and TillReceipt.objects.count() == 3 * svc.CHUNK  # a GET changes nothing

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(url("statementimport_resume_import", imp.pk), {"confirmed": "1"})
    assert response.status_code == 302 and callbacks  # queued as a task (Q_SYNC runs it inline)
    imp.refresh_from_db()
    assert imp.status == ImportStatus.DONE and (imp.rows_done, imp.rows_total) == (ROWS, ROWS)
    assert imp.counts["new"] == ROWS and imp.counts["known"] == 0
    assert imp.attempts == 2 and imp.lease_token == "" and not imp.is_dead()
    assert TillReceipt.objects.filter(statement_import=imp).count() == ROWS
    assert_each_receipt_once_with_one_entry(ROWS)
    page = client.get(url("statementimport_change", imp.pk)).content.decode()
    assert "5,500 / 5,500 rows (100%)" in page and "Resume import" not in page
    event = AuditEvent.objects.get(action="statement.import_resumed")
    assert event.actor == finance and event.before["rows_done"] == 3 * svc.CHUNK


def test_a_failed_import_is_retried_from_its_last_chunk():
    imp = svc.statement_import_create(data=statement(2500), filename="f.csv")
    real = svc._insert_statement_rows
    calls = {"n": 0}

    def flaky(rows, imp):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("connection reset")
        return real(rows, imp)

    with mock.patch.object(svc, "_insert_statement_rows", side_effect=flaky), pytest.raises(RuntimeError):
        svc.statement_import_start(import_id=imp.pk, inline=True)
    imp.refresh_from_db()
    assert imp.status == ImportStatus.FAILED and imp.rows_done == svc.CHUNK and imp.is_resumable()
    assert imp.errors == [{"message": "connection reset"}] and imp.lease_token == ""
    imp = svc.statement_import_resume(import_id=imp.pk, inline=True)
    assert imp.status == ImportStatus.DONE and imp.counts["new"] == 2500 and imp.errors == []
    assert_each_receipt_once_with_one_entry(2500)


def test_resume_refuses_a_live_a_finished_and_a_previewed_import():
    live = svc.statement_import_create(data=statement(10), filename="live.csv")
    StatementImport.objects.filter(pk=live.pk).update(
        status=ImportStatus.RUNNING, lease_token="w1", heartbeat_at=timezone.now()
    )
    with pytest.raises(ImportRefused, match="importing"):
        svc.statement_import_resume(import_id=live.pk)
    done = svc.statement_import_create(data=statement(10, prefix="UCB"), filename="done.csv")
    svc.statement_import_start(import_id=done.pk)
    with pytest.raises(ImportRefused, match="imported"):
        svc.statement_import_resume(import_id=done.pk)
    preview = svc.statement_import_create(data=statement(10, prefix="UCC"), filename="p.csv")
    with pytest.raises(ImportRefused):
        svc.statement_import_resume(import_id=preview.pk)
    live.refresh_from_db()
    assert live.lease_token == "w1" and live.status == ImportStatus.RUNNING


def test_a_second_worker_cannot_take_a_live_import():
    imp = svc.statement_import_create(data=statement(2500), filename="x.csv")
    # Worker 1 holds the lease and showed a sign of life a moment ago.
    StatementImport.objects.filter(pk=imp.pk).update(
        status=ImportStatus.RUNNING, lease_token="worker-1", heartbeat_at=timezone.now(), attempts=1
    )
    second = svc.statement_import_run(import_id=imp.pk)  # the task delivered twice, say
    assert (second.status, second.lease_token, second.attempts) == (ImportStatus.RUNNING, "worker-1", 1)
    assert not TillReceipt.objects.exists()
    # Once worker 1 is silent for longer than the limit, the next worker takes over and finishes.
    StatementImport.objects.filter(pk=imp.pk).update(heartbeat_at=timezone.now() - LONG_AGO)
    taken = svc.statement_import_run(import_id=imp.pk)
    assert taken.status == ImportStatus.DONE and taken.attempts == 2
    assert_each_receipt_once_with_one_entry(2500)


def test_a_worker_that_lost_its_lease_stops_at_its_next_chunk():
    imp = svc.statement_import_create(data=statement(4000), filename="y.csv")
    StatementImport.objects.filter(pk=imp.pk).update(status=ImportStatus.QUEUED)
    real = svc._insert_statement_rows
    calls = {"n": 0}

    def taken_over_during_chunk_two(rows, imp):
        calls["n"] += 1
        if calls["n"] == 2:  # meanwhile another worker (or "Resume import") took the import over
            StatementImport.objects.filter(pk=imp.pk).update(lease_token="worker-2")
        return real(rows, imp)

    with mock.patch.object(svc, "_insert_statement_rows", side_effect=taken_over_during_chunk_two):
        stopped = svc.statement_import_run(import_id=imp.pk)
    assert calls["n"] == 2 and stopped.rows_done == 2 * svc.CHUNK
    # Neither failed nor done: the import is worker 2's to finish; chunk three was never written.
    assert (stopped.status, stopped.lease_token) == (ImportStatus.RUNNING, "worker-2")
    assert TillReceipt.objects.count() == 2 * svc.CHUNK


def test_agent_cannot_resume_an_import(client_for, agent):
    imp = import_killed_at(rows=2100, chunks=1)
    response = client_for(agent).post(url("statementimport_resume_import", imp.pk), {"confirmed": "1"})
    assert response.status_code == 403
    imp.refresh_from_db()
    assert imp.status == ImportStatus.RUNNING and imp.attempts == 1


# ---- matcher runs --------------------------------------------------------------------------------
def dead_run(**fields) -> ReconciliationRun:
    return ReconciliationRun.objects.create(
        status=RunStatus.RUNNING, heartbeat_at=timezone.now() - LONG_AGO, trigger="schedule", **fields
    )


def test_a_dead_run_is_abandoned_by_the_next_run_which_completes(bundles):
    died = dead_run()
    live = ReconciliationRun.objects.create(status=RunStatus.RUNNING, heartbeat_at=timezone.now())
    r = receipt(amount="150")
    claim = ClaimFactory(code=r.code)
    run = claims_reconcile(trigger="manual", now=NOW)
    assert run.status == RunStatus.DONE and run.finished_at and run.counts["verified"] == 1
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.VERIFIED and Order.objects.count() == 1
    died.refresh_from_db()
    assert died.status == RunStatus.ABANDONED and f"closed as abandoned by run #{run.pk}" in died.error
    assert died.finished_at == died.heartbeat_at and not died.has_died()
    live.refresh_from_db()
    assert live.status == RunStatus.RUNNING  # a slow but live run is left alone
    # Running again is the retry: nothing doubles.
    again = claims_reconcile(trigger="manual", now=NOW)
    assert again.status == RunStatus.DONE and again.counts.get("verified", 0) == 0
    assert Order.objects.count() == 1


def test_a_run_heartbeats_every_batch_and_records_a_failure(bundles):
    for _ in range(3):
        ClaimFactory(code=receipt(amount="150").code)
    beats = []
    real = runs.run_heartbeat
    with mock.patch(
        "reconciliation.services.matcher.run_heartbeat", side_effect=lambda r: beats.append(real(r))
    ):
        run = claims_reconcile(trigger="manual", now=NOW, batch=1)
    assert len(beats) == 3 and run.status == RunStatus.DONE
    ClaimFactory(code=receipt(amount="150").code)
    boom = RuntimeError("boom")
    with (
        mock.patch("reconciliation.services.matcher._reconcile_batch", side_effect=boom),
        pytest.raises(RuntimeError),
    ):
        claims_reconcile(trigger="manual", now=NOW)
    failed = ReconciliationRun.objects.latest("pk")
    assert failed.status == RunStatus.FAILED and "boom" in failed.error and failed.finished_at


def test_admin_shows_a_died_run_and_closes_it_as_abandoned(client_for, finance, agent):
    died = dead_run()
    client = client_for(finance)
    listed = client.get(url("reconciliationrun_changelist"), {"worker": "died"}).content.decode()
    assert f"Run #{died.pk}" in listed and "Died (no heartbeat)" in listed
    page = client.get(url("reconciliationrun_change", died.pk)).content.decode()
    assert "Close as abandoned" in page
    refused = client_for(agent).post(url("reconciliationrun_close_abandoned", died.pk), {"confirmed": "1"})
    assert refused.status_code == 403
    client = client_for(finance)
    assert "next run" in client.get(url("reconciliationrun_close_abandoned", died.pk)).content.decode()
    client.post(url("reconciliationrun_close_abandoned", died.pk), {"confirmed": "1"})
    died.refresh_from_db()
    assert died.status == RunStatus.ABANDONED and "by finance" in died.error
    assert AuditEvent.objects.get(action="reconciliation_run.abandoned").actor == finance
    page = client.get(url("reconciliationrun_change", died.pk)).content.decode()
    assert "Close as abandoned" not in page and "Abandoned (died)" in page


def test_a_live_or_finished_run_cannot_be_closed_as_abandoned():
    live = ReconciliationRun.objects.create(status=RunStatus.RUNNING, heartbeat_at=timezone.now())
    finished = ReconciliationRun.objects.create(status=RunStatus.DONE, finished_at=timezone.now())
    for run in (live, finished):
        with pytest.raises(ReconciliationError):
            runs.run_close_abandoned(run_id=run.pk)
    live.refresh_from_db()
    assert live.status == RunStatus.RUNNING
