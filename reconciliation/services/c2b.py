"""C2B confirmations (Daraja): the hostile-input checks, the draft and its recording."""

from __future__ import annotations

import datetime as dt
import json
import math
import re

from django.conf import settings
from django.utils import timezone

from console.kernel.clock import NAIROBI
from console.kernel.plausible import (
    Implausible,
    clean_json,
    clean_text,
    plausible_amount,
    plausible_receipt,
    plausible_time,
)
from ledger.models import CallbackLog, CallbackOutcome
from reconciliation.models import ReceiptSource, TillReceipt

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
    InvalidC2BPayload,
)
from .receipt_record import ReceiptDraft, receipt_record_one

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
    return receipt_record_one(c2b_draft(payload))


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
    receipt, created = receipt_record_one(draft)
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
