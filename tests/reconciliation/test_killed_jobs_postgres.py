"""Really killed jobs on PostgreSQL: `manage.py import_statement` and `manage.py reconcile` are
SIGKILLed mid-way in a subprocess, then resumed; every receipt, order and entry exists once."""

import datetime as dt
import os
import secrets
import signal
import subprocess
import sys
import threading
import time

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from ledger.models import EntryKind, JournalEntry, Order
from reconciliation.models import (
    Claim,
    ClaimStatus,
    ImportStatus,
    ReconciliationRun,
    RunStatus,
    StatementImport,
    TillReceipt,
    WhatsAppMessage,
)
from reconciliation.services import statements as svc
from reconciliation.services.errors import ImportRefused
from reconciliation.services.matcher import claims_reconcile

from .test_killed_jobs import (
    LONG_AGO,
    assert_close_day_agrees_with_the_books,
    assert_each_receipt_once_with_one_entry,
    statement,
)

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]
ROWS = 20_000
CLAIMS = 1000


def subprocess_env() -> dict:
    """The test database (test_<name>), this test's media folder, and tokens that pass the checks."""
    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "console.test_settings",
        "DATABASE_URL": f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MEDIA_ROOT": settings.MEDIA_ROOT,
        "CACHE_URL": "locmemcache://",
        "STK_CALLBACK_TOKEN": secrets.token_urlsafe(32),
        "C2B_CALLBACK_TOKEN": secrets.token_urlsafe(32),
    }


def start(*args, **env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**subprocess_env(), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def kill_when(proc: subprocess.Popen, ready, timeout: float = 40) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds (polled); fail if it ends or times out first."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read()[-2000:]!r}"
        assert time.monotonic() < deadline, "never got far enough to be killed"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    # Its server process may still be finishing a statement (even a COMMIT): read after it is gone.
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
            if cursor.fetchone()[0] == 0:
                return
        assert time.monotonic() < deadline + 10, "the killed process's connection never went away"
        time.sleep(0.05)


def test_import_statement_killed_mid_way_resumes_with_every_receipt_once(tmp_path):
    path = tmp_path / "big.csv"
    path.write_bytes(statement(ROWS))
    proc = start("import_statement", str(path))
    kill_when(
        proc,
        lambda: StatementImport.objects.filter(
            status=ImportStatus.RUNNING, rows_done__gte=3 * svc.CHUNK
        ).exists(),
    )
    imp = StatementImport.objects.get()
    assert imp.status == ImportStatus.RUNNING and 0 < imp.rows_done < ROWS and imp.rows_done % svc.CHUNK == 0
    # Whole chunks only: receipts and their entries committed together, the chunk in flight rolled back.
    assert TillReceipt.objects.filter(statement_import=imp).count() == imp.rows_done
    assert JournalEntry.objects.filter(kind=EntryKind.TILL_RECEIPT).count() == imp.rows_done
    with pytest.raises(ImportRefused):  # its heartbeat is fresh: it does not look dead yet
        svc.statement_import_resume(import_id=imp.pk)

    # HEARTBEAT_STALE_SECONDS pass (moved back rather than waited for); then "Resume import".
    StatementImport.objects.filter(pk=imp.pk).update(heartbeat_at=timezone.now() - LONG_AGO)
    imp.refresh_from_db()
    assert imp.is_dead()
    svc.statement_import_resume(import_id=imp.pk)  # queued on commit; Q_SYNC runs the task here
    imp.refresh_from_db()
    assert imp.status == ImportStatus.DONE and (imp.rows_done, imp.rows_total) == (ROWS, ROWS)
    assert imp.counts["new"] == ROWS and imp.attempts == 2
    assert_each_receipt_once_with_one_entry(ROWS)


def test_two_workers_racing_for_one_import_import_it_once():
    imp = svc.statement_import_create(data=statement(5000), filename="race.csv")
    StatementImport.objects.filter(pk=imp.pk).update(status=ImportStatus.QUEUED)
    barrier, errors = threading.Barrier(2), []

    def work():
        try:
            barrier.wait()
            svc.statement_import_run(import_id=imp.pk)
        except Exception as exc:  # collected for the assertion
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    imp.refresh_from_db()
    assert errors == [] and imp.status == ImportStatus.DONE and imp.attempts == 1
    assert_each_receipt_once_with_one_entry(5000)


def test_reconcile_killed_mid_run_is_abandoned_and_the_next_run_verifies_the_rest(tmp_path):
    call_command("loaddata", "fixtures/bundles.json", verbosity=0)
    imp = svc.statement_import_create(data=statement(CLAIMS, prefix="UCB"), filename="claims.csv")
    svc.statement_import_start(import_id=imp.pk, inline=True)
    receipts = list(TillReceipt.objects.order_by("pk"))
    messages = WhatsAppMessage.objects.bulk_create(
        WhatsAppMessage(
            sender_label=f"2547{i:08d}",
            sender_msisdn=f"2547{i:08d}",
            sent_at=r.paid_at + dt.timedelta(minutes=5),
            text=f"paid {r.code} load 0712345678",
            fingerprint=f"killed-run-{i}",
        )
        for i, r in enumerate(receipts)
    )
    Claim.objects.bulk_create(
        Claim(
            message=m,
            sender_msisdn=m.sender_msisdn,
            code=r.code,
            recipient_msisdn="254712345678",
            claimed_at=m.sent_at,
        )
        for m, r in zip(messages, receipts, strict=True)
    )

    # Verifications are written in sets (MATCHER_VERIFY_SET claims, one transaction each): small
    # sets here, so the run is killed between two of them.
    proc = start("reconcile", MATCHER_VERIFY_SET="5")
    kill_when(proc, lambda: Claim.objects.filter(status=ClaimStatus.VERIFIED).count() >= 200)
    died = ReconciliationRun.objects.get()
    done_before = Claim.objects.filter(status=ClaimStatus.VERIFIED).count()
    assert died.status == RunStatus.RUNNING and died.finished_at is None and 0 < done_before < CLAIMS
    assert done_before % 5 == 0  # each set committed whole, or not at all
    assert Order.objects.count() == done_before

    ReconciliationRun.objects.filter(pk=died.pk).update(heartbeat_at=timezone.now() - LONG_AGO)
    run = claims_reconcile(trigger="manual")
    died.refresh_from_db()
    assert died.status == RunStatus.ABANDONED and f"run #{run.pk}" in died.error
    assert run.status == RunStatus.DONE and run.counts["verified"] == CLAIMS - done_before
    assert Claim.objects.filter(status=ClaimStatus.VERIFIED).count() == CLAIMS
    assert Order.objects.count() == CLAIMS and not TillReceipt.objects.unmatched().exists()
    assert JournalEntry.objects.filter(kind=EntryKind.CLAIM_VERIFIED).count() == CLAIMS
    call_command("check_books", stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert_close_day_agrees_with_the_books(CLAIMS)
