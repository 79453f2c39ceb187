"""Matcher runs' bookkeeping: open, heartbeat, finish, and close the runs whose worker died.

A run is one row per matcher pass. Its worker bumps ``heartbeat_at`` after every batch; a run
still "running" with no heartbeat for HEARTBEAT_STALE_SECONDS has died (killed worker, lost
connection) and is closed as *abandoned* by the next run or by finance ("Close as abandoned").
The matcher is idempotent, so the next run is the retry: no run waits for, or refuses to start
because of, an old run that still looks open.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from console.kernel.audit import AuditAction, audit_record
from reconciliation.models import HEARTBEAT_STALE_SECONDS, ReconciliationRun, RunStatus

from .errors import ReconciliationError

ABANDONED_BY_RUN = "Died: no heartbeat for over {seconds} s; closed as abandoned by run #{run}."
ABANDONED_BY_USER = "Died: no heartbeat for over {seconds} s; closed as abandoned by {who}."
RUN_NOT_DEAD = "Run #{run} is {state}; only a run that died can be closed as abandoned."


def _abandon(queryset, error: str) -> int:
    # A dead run stopped somewhere after its last sign of life: that is the best "finished" we know.
    return queryset.update(
        status=RunStatus.ABANDONED,
        finished_at=Coalesce(F("heartbeat_at"), F("started_at")),
        error=error,
    )


def run_open(*, trigger: str) -> ReconciliationRun:
    """Record a new running run, then close every run that died before it (one UPDATE)."""
    now = timezone.now()
    run = ReconciliationRun.objects.create(trigger=trigger[:20], status=RunStatus.RUNNING, heartbeat_at=now)
    _abandon(
        ReconciliationRun.objects.died(now).exclude(pk=run.pk),
        ABANDONED_BY_RUN.format(seconds=HEARTBEAT_STALE_SECONDS, run=run.pk),
    )
    return run


def run_heartbeat(run: ReconciliationRun) -> None:
    """A sign of life after a batch (a run closed as abandoned meanwhile still finishes its work)."""
    run.heartbeat_at = timezone.now()
    ReconciliationRun.objects.filter(pk=run.pk).update(heartbeat_at=run.heartbeat_at)


def run_finish(run: ReconciliationRun, *, counts: dict) -> ReconciliationRun:
    """Close the run as done, or failed when ``run.error`` is set; it really finished, so this wins
    over an "abandoned" written while it was slow."""
    now = timezone.now()
    run.finished_at = run.heartbeat_at = now
    run.counts = counts
    run.status = RunStatus.FAILED if run.error else RunStatus.DONE
    run.save(update_fields=["finished_at", "heartbeat_at", "counts", "error", "status", "scope"])
    return run


def run_close_abandoned(*, run_id: int, user=None, now: dt.datetime | None = None) -> ReconciliationRun:
    """Close a run that died as abandoned (audited). Raises ReconciliationError when it is not dead."""
    with transaction.atomic():
        run = ReconciliationRun.objects.select_for_update().get(pk=run_id)
        if not run.has_died(now):
            state = "still running" if run.status == RunStatus.RUNNING else run.get_status_display().lower()
            raise ReconciliationError(RUN_NOT_DEAD.format(run=run.pk, state=state))
        who = user.get_username() if getattr(user, "pk", None) else "system"
        _abandon(
            ReconciliationRun.objects.filter(pk=run.pk),
            ABANDONED_BY_USER.format(seconds=HEARTBEAT_STALE_SECONDS, who=who),
        )
        before = {"status": run.status, "heartbeat_at": run.heartbeat_at}
        run.refresh_from_db()
        audit_record(
            actor=user,
            action=AuditAction.RECONCILIATION_RUN_ABANDONED,
            obj=run,
            before=before,
            after={"status": run.status, "finished_at": run.finished_at},
        )
    return run
