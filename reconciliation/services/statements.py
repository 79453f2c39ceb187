"""Statements (M-PESA Org portal export): preview, import in chunks (inline or by a worker
holding a lease, with a heartbeat), resume after a worker died."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Sum
from django.utils import timezone
from django_q import tasks as django_q_tasks

from console.kernel.audit import AuditAction, audit_record
from console.kernel.money import CENT, ZERO
from ledger.models import EntryKind, JournalEntry
from reconciliation.models import ImportStatus, ReceiptSource, SettlementState, StatementImport, TillReceipt
from reconciliation.parsers import StatementFormatError, parse_statement

from .errors import (
    ImportRefused,
)
from .matcher import open_claims, reconcile_later
from .receipt_record import ReceiptDraft, receipts_post_and_reconcile
from .settlement import settlements_prepare
from .statement_copy import statement_rows_copy
from .statement_scan import STATEMENT_HAS_ERRORS, StatementScan, known_codes, statement_scan

CHUNK = 1000
# Statements with more receipt rows than this import in the background with progress.
ASYNC_ROWS = 2000
NOT_A_PREVIEW = "This import is {status}; only a previewed statement can be imported."
NOT_RESUMABLE = "This import is {status}; only an import whose worker stopped or that failed can be resumed."


# ---------------------------------------------------------------------------------------------
# Statements (M-PESA Org portal export)
# ---------------------------------------------------------------------------------------------
def statement_parse(*, data: bytes, filename: str):
    """Parse a statement, refusing files with any bad row. Raises ImportRefused (nothing saved)."""
    try:
        parsed = parse_statement(data, filename)
    except StatementFormatError as exc:
        raise ImportRefused(str(exc))
    if parsed.errors:
        first = parsed.errors[0]
        raise ImportRefused(
            STATEMENT_HAS_ERRORS.format(
                count=len(parsed.errors), first=f"row {first.row_number}, {first.column}: {first.message}"
            )
        )
    return parsed


def statement_preview(*, data: bytes, filename: str) -> dict:
    """What importing this file would do, without saving anything.

    Returns {rows_total, new, known, new_amount, skipped: {reason: n}, errors: [...], warnings}.
    Row errors are returned, not raised, so the admin can list them with row numbers; a file
    that is not a statement raises ImportRefused.
    """
    try:
        parsed = parse_statement(data, filename)
    except StatementFormatError as exc:
        raise ImportRefused(str(exc))
    return _preview_of(parsed)


def _preview_of(parsed) -> dict:
    receipts = parsed.receipts
    known = known_codes([r.receipt for r in receipts])
    new_rows = [r for r in receipts if r.receipt not in known]
    return {
        "rows_total": len(receipts),
        "new": len(new_rows),
        "known": len(receipts) - len(new_rows),
        "new_amount": str(sum((r.paid_in for r in new_rows), Decimal("0.00"))),
        "skipped": dict(Counter(r.skip_reason for r in parsed.rows if r.disposition != "receipt")),
        "errors": [{"row": e.row_number, "column": e.column, "message": e.message} for e in parsed.errors],
        "warnings": list(parsed.warnings),
    }


SKIP_LABELS = {
    "not_completed": "Not completed (cancelled or failed)",
    "withdrawal": "Money out (withdrawal or payment)",
    "charge": "M-Pesa charge",
    "zero_amount": "Nothing paid in",
    "duplicate_in_file": "Twice in this file",
}
ALREADY_IMPORTED = "Already recorded ({source})"
ROWS_SHOWN = 200  # rows listed per section of a statement's page; the counts and sums are complete


@dataclass
class RowSection:
    """Rows of one kind on a statement's page: the first ROWS_SHOWN, the full count and sum."""

    rows: list[dict] = field(default_factory=list)
    count: int = 0
    amount: Decimal = Decimal("0.00")

    def add(self, row: dict, amount: Decimal) -> None:
        self.count += 1
        self.amount += amount
        if len(self.rows) < ROWS_SHOWN:
            self.rows.append(row)


def statement_rows(*, imp: StatementImport) -> dict[str, RowSection]:
    """The statement's rows as they stand now: {"added"|"to_add", "skipped"}.

    Before the import, "to_add" are the receipts not recorded yet, read against the receipts as
    they are now (not when the file was uploaded, so an overlapping file imported since does not
    inflate them); once done, "added" are the receipts this import recorded. "skipped" are the
    rows left alone, each with its reason: already recorded (by another import, a C2B callback or a
    pasted SMS), a charge, a withdrawal, not completed, twice in the file.
    """
    with imp.file.open("rb") as fh:
        parsed = parse_statement(fh.read(), imp.original_name)
    mine = dict(TillReceipt.objects.filter(statement_import=imp).values_list("code", "id"))
    others = {}
    codes = [r.receipt for r in parsed.receipts]
    for i in range(0, len(codes), CHUNK):
        found = TillReceipt.objects.filter(code__in=codes[i : i + CHUNK]).exclude(statement_import=imp)
        others.update({code: (pk, source) for code, pk, source in found.values_list("code", "id", "source")})
    sources = dict(ReceiptSource.choices)
    done = imp.status not in (ImportStatus.PREVIEW,)
    added, skipped = RowSection(), RowSection()
    for r in parsed.rows:
        row = {"row": r.row_number, "code": r.receipt, "at": r.completed_at, "amount": r.paid_in}
        if r.disposition != "receipt":
            amount = r.paid_in if r.paid_in > 0 else (r.withdrawn or abs(r.paid_in))  # a charge: its size
            skipped.add({**row, "amount": amount, "why": SKIP_LABELS.get(r.skip_reason, r.skip_reason)}, ZERO)
        elif r.receipt in mine:
            added.add({**row, "receipt_id": mine[r.receipt]}, r.paid_in)
        elif r.receipt in others:
            pk, source = others[r.receipt]
            why = ALREADY_IMPORTED.format(source=sources.get(source, source).lower())
            skipped.add({**row, "receipt_id": pk, "why": why}, ZERO)
        elif done:
            skipped.add({**row, "why": "Not imported yet (the import stopped before it)"}, ZERO)
        else:
            added.add(row, r.paid_in)
    return {"added" if done else "to_add": added, "skipped": skipped}


@transaction.atomic
def statement_import_create(*, data: bytes, filename: str, user=None) -> StatementImport:
    """Save an uploaded statement as a preview (no receipts yet). Atomic.

    Raises ImportRefused when the file is not a statement or has any bad row: nothing is saved.
    """
    return _statement_import_create(data=data, filename=filename, user=user)[0]


def statement_import_now(*, data: bytes, filename: str, user=None) -> StatementImport:
    """Save a statement and import it at once in this process (the command line), reading the
    file once for both: the preview counts and the rows of the run (spooled, not held).

    Raises ImportRefused when the file is not a statement or has any bad row: nothing is saved.
    """
    with transaction.atomic():
        imp, scan = _statement_import_create(data=data, filename=filename, user=user, keep_rows=True)
    with scan:
        return statement_import_start(import_id=imp.pk, user=user, inline=True, parsed=scan)


def _statement_import_create(
    *, data: bytes, filename: str, user, keep_rows: bool = False
) -> tuple[StatementImport, StatementScan]:
    scan = statement_scan(data=data, filename=filename, preview=True, keep_rows=keep_rows)
    preview = scan.preview
    imp = StatementImport(
        original_name=filename[:255],
        sha256=hashlib.sha256(data).hexdigest(),
        uploaded_by=user if getattr(user, "pk", None) else None,
        status=ImportStatus.PREVIEW,
        rows_total=preview["rows_total"],
        counts=preview,
    )
    imp.file.save(filename.rsplit("/", 1)[-1] or "statement", ContentFile(data), save=False)
    imp.save()
    audit_record(actor=user, action=AuditAction.STATEMENT_PREVIEWED, obj=imp, after=preview)
    return imp, scan


def statement_import_start(
    *, import_id: int, user=None, inline: bool = False, parsed: StatementScan | None = None
) -> StatementImport:
    """Import a previewed statement: inline when small (or asked), as a django-q2 task when large.

    ``parsed`` is this import's file as the caller already scanned it (an inline run skips its parse).
    Raises ImportRefused when the import is not a preview (e.g. already imported).
    """
    with transaction.atomic():
        imp = StatementImport.objects.select_for_update().get(pk=import_id)
        if imp.status != ImportStatus.PREVIEW:
            raise ImportRefused(NOT_A_PREVIEW.format(status=imp.get_status_display().lower()))
        imp.status = ImportStatus.QUEUED
        imp.heartbeat_at = timezone.now()  # a queued import no worker ever picks up shows as stopped too
        imp.save(update_fields=["status", "heartbeat_at"])
        audit_record(
            actor=user, action=AuditAction.STATEMENT_IMPORT_STARTED, obj=imp, after={"rows": imp.rows_total}
        )
    return _statement_import_dispatch(imp, inline=inline, parsed=parsed)


def statement_import_resume(
    *, import_id: int, user=None, inline: bool = False, now: dt.datetime | None = None
) -> StatementImport:
    """Re-queue an import whose worker died (no heartbeat for HEARTBEAT_STALE_SECONDS) or that
    failed; it carries on after its last committed chunk. Audited.

    Raises ImportRefused when the import is a preview, done, or still has a live worker.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # The lock waits for a live worker's chunk to commit, so its fresh heartbeat is what we read.
        imp = StatementImport.objects.select_for_update().get(pk=import_id)
        if not imp.is_resumable(now):
            raise ImportRefused(NOT_RESUMABLE.format(status=imp.get_status_display().lower()))
        before = {
            "status": imp.status,
            "rows_done": imp.rows_done,
            "heartbeat_at": imp.heartbeat_at,
            "errors": imp.errors,
        }
        # Clearing the lease fences off the old worker should it wake: its next chunk finds no lease.
        StatementImport.objects.filter(pk=imp.pk).update(
            status=ImportStatus.QUEUED, lease_token="", heartbeat_at=now, errors=[], finished_at=None
        )
        imp.refresh_from_db()
        audit_record(
            actor=user,
            action=AuditAction.STATEMENT_IMPORT_RESUMED,
            obj=imp,
            before=before,
            after={"status": imp.status, "rows_done": imp.rows_done},
        )
    return _statement_import_dispatch(imp, inline=inline)


def _statement_import_dispatch(
    imp: StatementImport, *, inline: bool, parsed: StatementScan | None = None
) -> StatementImport:
    if imp.rows_total - imp.rows_done > ASYNC_ROWS and not inline:
        transaction.on_commit(
            lambda: django_q_tasks.async_task("reconciliation.tasks.statement_import_run", imp.pk)
        )
        imp.refresh_from_db()
        return imp
    return statement_import_run(import_id=imp.pk, parsed=parsed)


class _LeaseLost(Exception):
    """Another worker took the import over (this one looked dead); that worker finishes it."""


def _statement_lease_take(import_id: int, token: str) -> bool:
    """Take the import for this worker: queued, or importing with a stale heartbeat.

    One conditional UPDATE: of two workers racing, the second finds a fresh heartbeat and leaves.
    """
    now = timezone.now()
    takeable = StatementImport.objects.takeable(now).filter(pk=import_id)
    taken = takeable.update(
        status=ImportStatus.RUNNING, lease_token=token, heartbeat_at=now, attempts=F("attempts") + 1
    )
    return taken == 1


def _statement_heartbeat(import_id: int, token: str, rows_done: int) -> None:
    """First statement of a chunk's transaction: renew the lease and set the progress that commits
    with the chunk. Its row lock makes a takeover wait for the chunk to commit. Raises _LeaseLost."""
    mine = StatementImport.objects.filter(pk=import_id, lease_token=token, status=ImportStatus.RUNNING)
    if not mine.update(heartbeat_at=timezone.now(), rows_done=rows_done):
        raise _LeaseLost


def statement_import_run(*, import_id: int, parsed: StatementScan | None = None) -> StatementImport:
    """Insert the statement's new receipts set-based, chunk by chunk, with progress; resumable.

    The worker first takes a lease (the import is queued, or importing with no heartbeat for
    HEARTBEAT_STALE_SECONDS), so two workers never import one statement at once; without it
    this does nothing. Each chunk commits its receipts, their journal entries, the progress and
    the heartbeat in one transaction, so a killed worker leaves whole chunks behind and a resumed
    run carries on after ``rows_done``, skipping known codes too: nothing doubled, nothing lost.
    One matcher run is queued for the import's receipts once its last chunk has committed (or
    once it failed, for the chunks that did). On an unexpected error the import is marked failed
    with the message (it can be resumed).
    """
    token = uuid.uuid4().hex
    if not _statement_lease_take(import_id, token):
        return StatementImport.objects.get(pk=import_id)  # done, a preview, or another worker's
    imp = StatementImport.objects.get(pk=import_id)
    try:
        if parsed is None:  # a worker, or a run in another request than the upload: scan the file
            with imp.file.open("rb") as fh:
                parsed = statement_scan(data=fh.read(), filename=imp.original_name, keep_rows=True)
        with parsed:
            total = parsed.receipts_total
            for done, chunk in parsed.receipt_chunks(start=imp.rows_done, size=_chunk_rows()):
                with transaction.atomic():
                    _statement_heartbeat(imp.pk, token, rows_done=done)
                    _insert_statement_rows(chunk, imp)
        # Counted, not summed per run: a resumed import's earlier chunks are its receipts too.
        added = TillReceipt.objects.filter(statement_import=imp).aggregate(n=Count("id"), s=Sum("amount"))
        new_total = added["n"]
        counts = dict(imp.counts or {})
        # What this import recorded, not what the preview expected: another source may have come first.
        new_amount = str((added["s"] or ZERO).quantize(CENT))
        counts.update({"new": new_total, "known": total - new_total, "new_amount": new_amount})
        now = timezone.now()
        StatementImport.objects.filter(pk=imp.pk, lease_token=token).update(
            status=ImportStatus.DONE,
            rows_total=total,
            rows_done=total,
            counts=counts,
            finished_at=now,
            heartbeat_at=now,
            lease_token="",
        )
        _statement_reconcile(imp)
    except _LeaseLost:
        pass  # taken over while this worker looked dead: the new holder finishes the import
    except Exception as exc:  # recorded on the import for the operator, then re-raised for the task log
        StatementImport.objects.filter(pk=imp.pk, lease_token=token).update(
            status=ImportStatus.FAILED,
            errors=[{"message": str(exc)}],
            finished_at=timezone.now(),
            lease_token="",
        )
        with contextlib.suppress(DatabaseError):  # the error to report is the one above
            _statement_reconcile(imp)
        raise
    imp.refresh_from_db()
    return imp


def _statement_reconcile(imp: StatementImport) -> None:
    """Queue one matcher run (after commit) for the import's receipts, not one per chunk.

    Its codes are those the run can act on: the receipts an open claim names, and the receipts a
    booked STK payment may settle (its sweep); one query instead of the run's look-ups of every
    code. With none of those, the run is still queued (for the first receipt): it also lets new
    receipts pay STK prompts that never got an answer (tasks.reconcile).
    """
    mine = TillReceipt.objects.filter(statement_import=imp)
    claimed = open_claims().filter(code__in=mine.values("code")).values("code")
    stk_booked = JournalEntry.objects.filter(kind=EntryKind.STK_PAYMENT, receipt_code=OuterRef("code"))
    codes = list(
        mine.filter(
            Q(code__in=claimed) | Q(settlement=SettlementState.NONE, order__isnull=True) & Exists(stk_booked)
        ).values_list("code", flat=True)
    )
    if not codes:
        codes = list(mine.order_by("pk").values_list("code", flat=True)[:1])
    if codes:
        reconcile_later(trigger="receipt", codes=codes)


def _chunk_rows() -> int:
    # Set-based SQL pays a fixed cost per chunk (a commit, a matcher run): larger chunks on PostgreSQL.
    return settings.STATEMENT_COPY_CHUNK if connection.vendor == "postgresql" else CHUNK


def _insert_statement_rows(rows, imp: StatementImport) -> list:
    """Record and book a chunk's new receipts: on PostgreSQL by COPY and set-based SQL
    (statement_copy); elsewhere bulk_create(ignore_conflicts), then book only the rows this import
    actually inserted. Matching is queued by the run, once per import."""
    if connection.vendor == "postgresql":
        return statement_rows_copy(rows, imp, reconcile=False)
    return _insert_statement_rows_orm(rows, imp)


def _insert_statement_rows_orm(rows, imp: StatementImport) -> list[TillReceipt]:
    codes = [r.receipt for r in rows]
    known = known_codes(codes)
    drafts = [
        ReceiptDraft(
            code=r.receipt,
            amount=r.paid_in.quantize(CENT),
            paid_at=r.completed_at,
            source=ReceiptSource.STATEMENT,
            payer_masked=r.payer_masked or "",
            payer_name=r.payer_name or "",
            raw={"row": r.row_number, "details": r.details, "reason_type": r.reason_type},
        )
        for r in rows
        if r.receipt not in known
    ]
    if not drafts:
        return []
    new = [d.as_model(imp) for d in drafts]
    payments = settlements_prepare(new)  # STK receipts are marked as settlements before the insert
    TillReceipt.objects.bulk_create(new, ignore_conflicts=True)
    # Rows that lost a race to another source are not ours: they carry no link to this import.
    inserted = list(
        TillReceipt.objects.filter(code__in=[d.code for d in drafts], statement_import=imp).order_by(
            "paid_at"
        )
    )
    receipts_post_and_reconcile(inserted, payments, reconcile=False)
    return inserted
