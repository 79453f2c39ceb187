"""Till receipts: money paid into our till, from C2B confirmations, statements and pasted SMS.

Every new receipt posts Dr M-Pesa till / Cr Unallocated receipts through ledger.books, except
one whose code is an STK payment's: that is its settlement, Dr M-Pesa till / Cr STK clearing
(see settlement.py). A receipt
code is unique, so recording the same payment twice (a replayed callback, an overlapping
statement, a re-pasted SMS) adds nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django_q import tasks as django_q_tasks

from console.kernel.audit import audit_record
from console.kernel.plausible import (
    Implausible,
    clean_json,
    clean_text,
    plausible_amount,
    plausible_receipt,
    plausible_time,
)
from ledger import books
from ledger.models import CallbackLog, CallbackOutcome
from reconciliation.models import ImportStatus, ReceiptSource, StatementImport, TillReceipt
from reconciliation.parsers import StatementFormatError, parse_statement, parse_till_sms_receipts
from reconciliation.parsers.sms import till_sms_problem
from reconciliation.services.matcher import reconcile_later
from reconciliation.services.settlement import settlements_book, settlements_prepare

from .errors import (
    BAD_C2B,
    C2B_AMOUNT_NOT_ASCII,
    C2B_BAD_TIME,
    C2B_HAS_NUL,
    C2B_NOT_AUTHENTICATED,
    C2B_NOT_FINITE,
    C2B_NOT_JSON,
    C2B_NOT_OBJECT,
    C2B_NOT_TEXT,
    C2B_NOT_UNICODE,
    C2B_NOT_UTF8,
    C2B_NUMBER_TOO_LARGE,
    C2B_TOO_DEEP,
    ImportRefused,
    InvalidC2BPayload,
)

NAIROBI = ZoneInfo("Africa/Nairobi")
CENT = Decimal("0.01")
CHUNK = 1000
# Statements with more receipt rows than this import in the background with progress.
ASYNC_ROWS = 2000

NO_TILL_SMS = "No till SMS was found. Paste the whole message, from the code to the balance."
TILL_SMS_IMPOSSIBLE = "Nothing was recorded: {count} till SMS cannot be a payment. {problems}."
STATEMENT_HAS_ERRORS = "The statement has {count} bad row(s); nothing was saved. First: {first}"
NOT_A_PREVIEW = "This import is {status}; only a previewed statement can be imported."
NOT_RESUMABLE = "This import is {status}; only an import whose worker stopped or that failed can be resumed."


@dataclass(frozen=True)
class ReceiptDraft:
    code: str
    amount: Decimal
    paid_at: dt.datetime
    source: str
    payer_masked: str = ""
    payer_name: str = ""
    raw: dict = field(default_factory=dict)

    def as_model(self, statement_import=None) -> TillReceipt:
        return TillReceipt(
            code=self.code,
            amount=self.amount,
            paid_at=self.paid_at,
            source=self.source,
            payer_masked=(self.payer_masked or "")[:80],
            payer_name=(self.payer_name or "")[:120],
            raw=self.raw,
            statement_import=statement_import,
        )


def _post_and_reconcile(receipts: list[TillReceipt], payments: dict | None = None) -> None:
    """Book each new receipt (idempotent by code) and re-run matching for their codes after commit.

    A receipt marked as an STK settlement (settlement.settlements_prepare, before the insert; its
    payment in ``payments``) books Dr M-Pesa till / Cr STK clearing; every other one
    Dr M-Pesa till / Cr Unallocated receipts. Both set-based.
    """
    books.post_till_receipts_bulk([(r.code, r.amount, r.paid_at) for r in receipts if not r.settlement])
    settlements_book([r for r in receipts if r.settlement], payments or {})
    codes = [r.code for r in receipts]
    if codes:
        reconcile_later(trigger="receipt", codes=codes)


def _record_one(draft: ReceiptDraft) -> tuple[TillReceipt, bool]:
    """Insert one receipt unless its code is known. Returns (receipt, created). Atomic.

    A code that is an STK payment's is recorded as that payment's settlement (see settlement.py).
    """
    with transaction.atomic():
        existing = TillReceipt.objects.filter(code=draft.code).first()
        if existing:
            return existing, False
        receipt = draft.as_model()
        payments = settlements_prepare([receipt])
        try:
            with transaction.atomic():
                receipt.save()
        except IntegrityError:
            # A concurrent delivery of the same payment won; ours is the duplicate.
            return TillReceipt.objects.get(code=draft.code), False
        _post_and_reconcile([receipt], payments)
        return receipt, True


# ---------------------------------------------------------------------------------------------
# C2B confirmation (Daraja)
# ---------------------------------------------------------------------------------------------
_C2B_TIME_RE = re.compile(r"^[0-9]{14}$")  # ASCII only: \d and strptime also take other scripts' digits
_C2B_NAME_FIELDS = ("FirstName", "MiddleName", "LastName")
# Python refuses to turn integers of more than 4,300 digits into text; no C2B value comes close.
_C2B_LARGEST_NUMBER = 10**100
C2B_RECORDED = "Till receipt recorded."
C2B_ALREADY_RECORDED = "Receipt already recorded; nothing changed."


def _c2b_refused(detail: str, field: str | None = None) -> InvalidC2BPayload:
    return InvalidC2BPayload(BAD_C2B.format(detail=detail), field=field)


def _no_constant(name: str):
    # json accepts NaN and Infinity by default; neither is a payment and jsonb cannot hold them.
    raise ValueError(name)


def c2b_payload(data: bytes) -> dict:
    """Decode a C2B body strictly: a UTF-8 JSON object with no NUL, lone surrogate or non-finite number.

    Raises InvalidC2BPayload (never RecursionError or UnicodeError) for anything else.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _c2b_refused(C2B_NOT_UTF8)
    try:
        payload = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise _c2b_refused(C2B_TOO_DEEP)
    except ValueError:  # JSONDecodeError, NaN/Infinity, integers over Python's digit limit
        raise _c2b_refused(C2B_NOT_JSON)
    if not isinstance(payload, dict):
        raise _c2b_refused(C2B_NOT_OBJECT)
    _c2b_scan(payload)
    return payload


def _c2b_scan(payload: dict) -> None:
    """Refuse values PostgreSQL cannot store (NUL, lone surrogates) or that are no number (inf).

    Iterative, so a body nested as deeply as json allows cannot exhaust the stack here.
    """
    stack: list = [payload]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _c2b_scan_text(item)
        elif isinstance(item, dict):
            for key, value in item.items():
                _c2b_scan_text(key)
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise _c2b_refused(C2B_NOT_FINITE)
        elif isinstance(item, int) and abs(item) > _C2B_LARGEST_NUMBER:
            raise _c2b_refused(C2B_NUMBER_TOO_LARGE)


def _c2b_scan_text(text: str) -> None:
    if "\x00" in text:
        raise _c2b_refused(C2B_HAS_NUL)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _c2b_refused(C2B_NOT_UNICODE)


def _c2b_time(value: object) -> dt.datetime:
    """TransTime: 14 digits of East Africa Time (Daraja sends no zone), as a string or a number."""
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not _C2B_TIME_RE.match(text):
        raise Implausible(C2B_BAD_TIME.format(value=clean_text(repr(value), 40)))
    try:
        return dt.datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=NAIROBI)
    except ValueError:
        raise Implausible(C2B_BAD_TIME.format(value=text))


def _c2b_amount(value: object):
    """plausible_amount, in ASCII digits only (Decimal would also read "１００" as 100)."""
    if isinstance(value, str) and not value.isascii():
        raise Implausible(C2B_AMOUNT_NOT_ASCII.format(value=clean_text(repr(value), 40)))
    return plausible_amount(value, what="TransAmount")


def _c2b_text(payload: dict, field_name: str, max_length: int) -> str:
    """A free-text field (MSISDN may be masked or hashed): text or a number, cleaned and bounded."""
    value = payload.get(field_name)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Implausible(C2B_NOT_TEXT.format(field=field_name, value=clean_text(repr(value), 40)))
    return clean_text(str(value).strip(), max_length)


def c2b_draft(payload: object, *, now: dt.datetime | None = None) -> ReceiptDraft:
    """Read a C2B confirmation or validation body into a receipt, refusing anything out of range.

    TransID must be an M-Pesa code, TransAmount a positive amount in shillings and cents below
    MAX_PAYMENT_AMOUNT (a JSON number or a plain numeric string; "1,500" is refused because the
    comma is ambiguous and Daraja never sends one), TransTime within GATEWAY_TIME_WINDOW_DAYS
    before now (and not after now + CLOCK_SKEW_SECONDS). Raises InvalidC2BPayload naming the field.
    """
    if not isinstance(payload, dict):
        raise _c2b_refused(C2B_NOT_OBJECT)
    _c2b_scan(payload)
    window = dt.timedelta(days=settings.GATEWAY_TIME_WINDOW_DAYS)
    now = now or timezone.now()
    code = _c2b_field("TransID", plausible_receipt, payload.get("TransID"), what="TransID")
    amount = _c2b_field("TransAmount", _c2b_amount, payload.get("TransAmount"))
    paid_at = _c2b_field("TransTime", _c2b_time, payload.get("TransTime"))
    _c2b_field("TransTime", plausible_time, paid_at, what="TransTime", max_age=window, now=now)
    payer = _c2b_field("MSISDN", _c2b_text, payload, "MSISDN", 80)
    names = [_c2b_field(k, _c2b_text, payload, k, 120) for k in _C2B_NAME_FIELDS]
    return ReceiptDraft(
        code=code,
        amount=amount,
        paid_at=paid_at,
        source=ReceiptSource.C2B,
        payer_masked=payer,
        payer_name=" ".join(n for n in names if n)[:120],
        # The verbatim body stays in the callback inbox; this copy is for the receipt page.
        raw=clean_json(payload),
    )


def _c2b_field(field_name: str, read, *args, **kwargs):
    """``read(*args, **kwargs)``, an Implausible value becoming InvalidC2BPayload naming the field."""
    try:
        return read(*args, **kwargs)
    except Implausible as exc:
        raise _c2b_refused(exc.message, field=field_name)


def receipt_record_c2b(*, payload: object) -> tuple[TillReceipt, bool]:
    """Record a C2B confirmation. Atomic; idempotent on TransID. Raises InvalidC2BPayload."""
    return _record_one(c2b_draft(payload))


def c2b_confirmation_apply(*, log: CallbackLog, draft: ReceiptDraft | None = None) -> str:
    """Record the till receipt of a stored, authenticated C2B confirmation and set the log's outcome.

    ``draft`` is the body already checked by the edge (so a payment at the edge of the time
    window cannot pass there and fail here); without it the stored body is checked again, and
    one that no longer passes (e.g. retried after the window) is rejected with the reason.
    Idempotent (a replay is a duplicate); returns the outcome.
    """
    if not log.authenticated:
        return _c2b_log_outcome(log, CallbackOutcome.REJECTED, C2B_NOT_AUTHENTICATED)
    if draft is None:
        try:
            draft = c2b_draft(c2b_payload(log.body.encode("utf-8")))
        except InvalidC2BPayload as exc:
            return _c2b_log_outcome(log, CallbackOutcome.REJECTED, exc.message)
    receipt, created = _record_one(draft)
    if created:
        return _c2b_log_outcome(log, CallbackOutcome.APPLIED, C2B_RECORDED, receipt=receipt)
    return _c2b_log_outcome(log, CallbackOutcome.DUPLICATE, C2B_ALREADY_RECORDED, receipt=receipt)


def _c2b_log_outcome(log: CallbackLog, outcome: str, detail: str, receipt: TillReceipt | None = None) -> str:
    log.outcome = outcome
    log.detail = clean_text(detail, 2000)
    log.attempts += 1
    log.processed_at = timezone.now()
    log.next_attempt_at = None
    fields = ["outcome", "detail", "attempts", "processed_at", "next_attempt_at"]
    if receipt is not None:
        log.receipt, log.amount = receipt.code, receipt.amount
        fields += ["receipt", "amount"]
    log.save(update_fields=fields)
    return outcome


# ---------------------------------------------------------------------------------------------
# Pasted merchant-side till SMS
# ---------------------------------------------------------------------------------------------
def till_sms_drafts(*, text: str, now: dt.datetime | None = None) -> list[ReceiptDraft]:
    """The receipts the till SMS in ``text`` stand for, checked before anything is saved.

    Raises ImportRefused when no till SMS is found, or when any of them is impossible (dated in
    the future or before TILL_START_DATE, or an amount out of range): then none is recorded.
    Pasted and forwarded SMS both go through here.
    """
    found = parse_till_sms_receipts(text or "")
    if not found:
        raise ImportRefused(NO_TILL_SMS)
    now = now or timezone.now()
    problems = [p for p in (till_sms_problem(sms, now=now) for sms in found) if p]
    if problems:
        listed = "; ".join(p.rstrip(".") for p in problems)
        raise ImportRefused(TILL_SMS_IMPOSSIBLE.format(count=len(problems), problems=listed))
    return [
        ReceiptDraft(
            code=sms.code,
            amount=sms.amount.quantize(CENT),
            paid_at=sms.occurred_at,
            source=ReceiptSource.SMS,
            payer_masked=sms.phone or "",
            payer_name=sms.counterparty or "",
            raw={"sms": sms.code, "counterparty": sms.counterparty, "phone": sms.phone},
        )
        for sms in found
    ]


@transaction.atomic
def till_sms_import(*, text: str, user=None) -> dict:
    """Record every till SMS in ``text``. Atomic; idempotent by code.

    Returns counts {found, new, known, codes_new}. Raises ImportRefused (nothing recorded) when
    no SMS is found or any SMS is impossible (see till_sms_drafts).
    """
    drafts = till_sms_drafts(text=text)
    new = []
    for draft in drafts:
        receipt, created = _record_one(draft)
        if created:
            new.append(receipt)
            audit_record(
                actor=user, action="receipt.sms_recorded", obj=receipt, after={"amount": receipt.amount}
            )
    return {
        "found": len(drafts),
        "new": len(new),
        "known": len(drafts) - len(new),
        "codes_new": [r.code for r in new],
    }


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


def _known_codes(codes: list[str]) -> set[str]:
    known: set[str] = set()
    for i in range(0, len(codes), CHUNK):
        known.update(TillReceipt.objects.filter(code__in=codes[i : i + CHUNK]).values_list("code", flat=True))
    return known


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
    known = _known_codes([r.receipt for r in receipts])
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


@transaction.atomic
def statement_import_create(*, data: bytes, filename: str, user=None) -> StatementImport:
    """Save an uploaded statement as a preview (no receipts yet). Atomic.

    Raises ImportRefused when the file is not a statement or has any bad row: nothing is saved.
    """
    preview = _preview_of(statement_parse(data=data, filename=filename))
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
    audit_record(actor=user, action="statement.previewed", obj=imp, after=preview)
    return imp


def statement_import_start(*, import_id: int, user=None, inline: bool = False) -> StatementImport:
    """Import a previewed statement: inline when small (or asked), as a django-q2 task when large.

    Raises ImportRefused when the import is not a preview (e.g. already imported).
    """
    with transaction.atomic():
        imp = StatementImport.objects.select_for_update().get(pk=import_id)
        if imp.status != ImportStatus.PREVIEW:
            raise ImportRefused(NOT_A_PREVIEW.format(status=imp.get_status_display().lower()))
        imp.status = ImportStatus.QUEUED
        imp.heartbeat_at = timezone.now()  # a queued import no worker ever picks up shows as stopped too
        imp.save(update_fields=["status", "heartbeat_at"])
        audit_record(actor=user, action="statement.import_started", obj=imp, after={"rows": imp.rows_total})
    return _statement_import_dispatch(imp, inline=inline)


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
            action="statement.import_resumed",
            obj=imp,
            before=before,
            after={"status": imp.status, "rows_done": imp.rows_done},
        )
    return _statement_import_dispatch(imp, inline=inline)


def _statement_import_dispatch(imp: StatementImport, *, inline: bool) -> StatementImport:
    if imp.rows_total - imp.rows_done > ASYNC_ROWS and not inline:
        transaction.on_commit(
            lambda: django_q_tasks.async_task("reconciliation.tasks.statement_import_run", imp.pk)
        )
        imp.refresh_from_db()
        return imp
    return statement_import_run(import_id=imp.pk)


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


def statement_import_run(*, import_id: int) -> StatementImport:
    """Insert the statement's new receipts set-based, chunk by chunk, with progress; resumable.

    The worker first takes a lease (the import is queued, or importing with no heartbeat for
    HEARTBEAT_STALE_SECONDS), so two workers never import one statement at once; without it
    this does nothing. Each chunk commits its receipts, their journal entries, the progress and
    the heartbeat in one transaction, so a killed worker leaves whole chunks behind and a resumed
    run carries on after ``rows_done``, skipping known codes too: nothing doubled, nothing lost.
    On an unexpected error the import is marked failed with the message (it can be resumed).
    """
    token = uuid.uuid4().hex
    if not _statement_lease_take(import_id, token):
        return StatementImport.objects.get(pk=import_id)  # done, a preview, or another worker's
    imp = StatementImport.objects.get(pk=import_id)
    try:
        with imp.file.open("rb") as fh:
            data = fh.read()
        parsed = statement_parse(data=data, filename=imp.original_name)
        rows = parsed.receipts
        for i in range(min(imp.rows_done, len(rows)), len(rows), CHUNK):
            chunk = rows[i : i + CHUNK]
            with transaction.atomic():
                _statement_heartbeat(imp.pk, token, rows_done=i + len(chunk))
                _insert_statement_rows(chunk, imp)
        # Counted, not summed per run: a resumed import's earlier chunks are its receipts too.
        new_total = TillReceipt.objects.filter(statement_import=imp).count()
        counts = dict(imp.counts or {})
        counts.update({"new": new_total, "known": len(rows) - new_total})
        now = timezone.now()
        StatementImport.objects.filter(pk=imp.pk, lease_token=token).update(
            status=ImportStatus.DONE,
            rows_total=len(rows),
            rows_done=len(rows),
            counts=counts,
            finished_at=now,
            heartbeat_at=now,
            lease_token="",
        )
    except _LeaseLost:
        pass  # taken over while this worker looked dead: the new holder finishes the import
    except Exception as exc:  # recorded on the import for the operator, then re-raised for the task log
        StatementImport.objects.filter(pk=imp.pk, lease_token=token).update(
            status=ImportStatus.FAILED,
            errors=[{"message": str(exc)}],
            finished_at=timezone.now(),
            lease_token="",
        )
        raise
    imp.refresh_from_db()
    return imp


def _insert_statement_rows(rows, imp: StatementImport) -> list[TillReceipt]:
    """bulk_create(ignore_conflicts) then book only the rows this import actually inserted."""
    codes = [r.receipt for r in rows]
    known = _known_codes(codes)
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
    _post_and_reconcile(inserted, payments)
    return inserted
