"""Statement import: preview, commit, idempotent re-import, broken files, large files as a task."""

from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from console.kernel.queue import HintBroker
from ledger.models import EntryKind, JournalEntry
from reconciliation.models import ImportStatus, ReceiptSource, StatementImport, TillReceipt
from reconciliation.services import receipts as svc
from reconciliation.services.errors import ImportRefused

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[1] / "data"
MARCH = ROOT / "reconciliation" / "statement_march.csv"
OVERLAP = ROOT / "reconciliation" / "statement_march_overlap.csv"


def till_entries():
    return JournalEntry.objects.filter(kind=EntryKind.TILL_RECEIPT).count()


def test_preview_counts_new_known_and_skipped_and_saves_nothing():
    preview = svc.statement_preview(data=MARCH.read_bytes(), filename=MARCH.name)
    assert (preview["new"], preview["known"], preview["rows_total"]) == (3, 0, 3)
    assert preview["skipped"] == {"charge": 1, "not_completed": 1, "withdrawal": 1}
    assert preview["errors"] == []
    assert not TillReceipt.objects.exists() and not StatementImport.objects.exists()


def test_import_creates_receipts_with_books_entries():
    imp = svc.statement_import_create(data=MARCH.read_bytes(), filename=MARCH.name)
    assert imp.status == ImportStatus.PREVIEW and not TillReceipt.objects.exists()
    imp = svc.statement_import_start(import_id=imp.pk)
    assert imp.status == ImportStatus.DONE and (imp.rows_done, imp.rows_total) == (3, 3)
    assert imp.counts["new"] == 3
    r = TillReceipt.objects.get(code="UCA2MX9P3F")
    assert r.amount == Decimal("250.00") and r.source == ReceiptSource.STATEMENT and r.statement_import == imp
    assert r.payer_masked == "254727***578" and r.payer_name == "MARY ATIENO"
    assert till_entries() == 3


def test_reimporting_same_and_overlapping_file_adds_nothing_twice():
    call_command("import_statement", str(MARCH))
    call_command("import_statement", str(MARCH))
    assert TillReceipt.objects.count() == 3 and till_entries() == 3
    imp = svc.statement_import_create(data=OVERLAP.read_bytes(), filename=OVERLAP.name)
    assert (imp.counts["new"], imp.counts["known"]) == (1, 1)
    svc.statement_import_start(import_id=imp.pk)
    assert TillReceipt.objects.count() == 4 and till_entries() == 4


def test_import_command_prints_counts(capsys):
    call_command("import_statement", str(MARCH))
    out = capsys.readouterr().out
    assert "3 new, 0 already known, 3 skipped" in out


def test_dry_run_saves_nothing(capsys):
    call_command("import_statement", str(MARCH), "--dry-run")
    assert "would import: 3 new" in capsys.readouterr().out
    assert not TillReceipt.objects.exists()


@pytest.mark.parametrize(
    "name", ["bad_amount.csv", "bad_date.csv", "missing_columns.csv", "wrong_header.csv", "empty.csv"]
)
def test_broken_file_is_refused_with_a_clear_error_and_saves_nothing(name):
    data = (ROOT / "statements" / name).read_bytes()
    with pytest.raises(ImportRefused) as exc:
        svc.statement_import_create(data=data, filename=name)
    assert exc.value.message
    assert not StatementImport.objects.exists() and not TillReceipt.objects.exists()
    with pytest.raises(CommandError):
        call_command("import_statement", str(ROOT / "statements" / name))
    assert not TillReceipt.objects.exists()


def test_bad_row_error_names_the_row():
    preview = svc.statement_preview(
        data=(ROOT / "statements" / "bad_amount.csv").read_bytes(), filename="x.csv"
    )
    assert preview["errors"][0]["row"] == 2 and preview["errors"][0]["column"] == "Paid In"


def test_an_import_cannot_be_started_twice():
    imp = svc.statement_import_create(data=MARCH.read_bytes(), filename=MARCH.name)
    svc.statement_import_start(import_id=imp.pk)
    with pytest.raises(ImportRefused):
        svc.statement_import_start(import_id=imp.pk)


def _big_statement(rows):
    header = (
        "Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,Withdrawn,Balance,"
        "Balance Confirmed,Reason Type,Other Party Info,Linked Transaction ID,A/C No.\n"
    )
    lines = [
        f"UCA{i:07d},10-03-2026 {8 + i // 3600 % 10:02d}:{i // 60 % 60:02d}:{i % 60:02d},,"
        f"Merchant Payment from 0712***{i % 1000:03d} - CUSTOMER {i},Completed,150.00,,,TRUE,"
        "Customer Merchant Payment,,,\n"
        for i in range(rows)
    ]
    return (header + "".join(lines)).encode()


def test_large_statement_runs_as_a_task_with_progress(django_capture_on_commit_callbacks):
    data = _big_statement(svc.ASYNC_ROWS + 5)
    imp = svc.statement_import_create(data=data, filename="big.csv")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        started = svc.statement_import_start(import_id=imp.pk)
    assert started.status == ImportStatus.QUEUED  # handed to django-q2, not run in the request
    assert callbacks  # the task is queued on commit (Q_SYNC runs it inline in tests)
    imp.refresh_from_db()
    assert imp.status == ImportStatus.DONE
    assert (imp.rows_done, imp.rows_total) == (svc.ASYNC_ROWS + 5, svc.ASYNC_ROWS + 5)
    assert TillReceipt.objects.count() == svc.ASYNC_ROWS + 5


def test_import_command_parses_the_file_once():
    from unittest import mock

    from reconciliation.services import statement_scan

    stream = statement_scan.statement_rows_stream
    with mock.patch.object(statement_scan, "statement_rows_stream", wraps=stream) as parse:
        call_command("import_statement", str(MARCH))
    assert parse.call_count == 1  # the preview counts and the run share one read of the rows
    imp = StatementImport.objects.get()
    assert imp.status == ImportStatus.DONE and imp.counts["new"] == 3 and till_entries() == 3


def test_import_command_names_every_bad_row_and_saves_nothing(capsys):
    with pytest.raises(CommandError, match=r"1 bad row\(s\); nothing was saved"):
        call_command("import_statement", str(ROOT / "statements" / "bad_amount.csv"))
    assert "row 2, Paid In:" in capsys.readouterr().err
    assert not StatementImport.objects.exists() and not TillReceipt.objects.exists()


def test_an_import_in_chunks_queues_one_matcher_run_for_the_codes_it_can_act_on(
    django_capture_on_commit_callbacks,
):
    from unittest import mock

    from django.utils import timezone

    from reconciliation.services import statements

    from .factories import ClaimFactory

    ClaimFactory(code="UCA0000007", claimed_at=timezone.now())  # waiting for its receipt
    with (
        mock.patch.object(statements, "_chunk_rows", return_value=400),
        mock.patch("django_q.tasks.async_task") as queue,
        django_capture_on_commit_callbacks(execute=True),
    ):
        svc.statement_import_now(data=_big_statement(1000), filename="big.csv")
    assert TillReceipt.objects.count() == 1000 and till_entries() == 1000
    (call,) = queue.call_args_list  # one run for the import, not one per chunk of 400
    assert call.args == ("reconciliation.tasks.reconcile",)
    assert isinstance(call.kwargs.pop("broker"), HintBroker)  # a hint: the schedule repeats it
    assert call.kwargs == {"trigger": "receipt", "codes": ["UCA0000007"]}


def test_an_import_nobody_claimed_still_queues_one_run(django_capture_on_commit_callbacks):
    from unittest import mock

    with (
        mock.patch("django_q.tasks.async_task") as queue,
        django_capture_on_commit_callbacks(execute=True),
    ):
        svc.statement_import_now(data=_big_statement(5), filename="small.csv")
    (call,) = queue.call_args_list  # it also lets new receipts pay unanswered STK prompts
    assert call.kwargs["codes"] == ["UCA0000000"]
