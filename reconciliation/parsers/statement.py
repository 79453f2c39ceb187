"""Parse the M-PESA Org portal statement export, CSV or XLSX (formats doc §4.1).

The header row is found by its "Receipt No." cell, below any preamble rows. Only Completed
rows with money paid in are receipts; every other row is kept with a skip reason so the
operator can see why it was not imported. Bad amounts or dates become :class:`RowError`
entries (the caller refuses to save anything when there are errors); a file that is not a
statement at all raises :class:`StatementFormatError`.

A receipt row must also be possible: Paid In positive, at most two decimals, below
``MAX_PAYMENT_AMOUNT``; completed neither after now + ``CLOCK_SKEW_SECONDS`` nor before
``TILL_START_DATE``. A payment-in row ("… from <payer>") with no money paid in is an error too,
not a skip. Only the receipt's amount and date are checked: Balance and Withdrawn may hold any
number.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from itertools import islice

from openpyxl.utils.datetime import from_excel

from console.kernel.clock import NAIROBI, as_nairobi
from console.kernel.phones import try_normalise_msisdn
from console.kernel.plausible import Implausible, plausible_amount

from .sms import KIND_TILL_RECEIVED, ParsedSms, find_sms_in_text, plausible_receipt_time
from .statement_table import (  # noqa: F401 (StatementFormatError: re-exported)
    COL_ACCOUNT,
    COL_BALANCE,
    COL_COMPLETED,
    COL_DETAILS,
    COL_INITIATED,
    COL_LINKED,
    COL_OTHER_PARTY,
    COL_PAID_IN,
    COL_REASON,
    COL_RECEIPT,
    COL_STATUS,
    COL_WITHDRAWN,
    EMPTY_FILE,
    StatementFormatError,
    locate_header,
    read_table,
)

BAD_AMOUNT = "{value!r} is not an amount."
BAD_DATE = "{value!r} is not a date and time (expected e.g. 16-03-2025 19:51:00)."
MISSING_DATE = "The completion time is empty."
BAD_RECEIPT = "{value!r} is not an M-Pesa receipt number."
WARN_NO_RECEIPT = "Row {row}: no receipt number; row ignored."


DISPOSITION_RECEIPT = "receipt"
DISPOSITION_SKIPPED = "skipped"
SKIP_NOT_COMPLETED = "not_completed"
SKIP_WITHDRAWAL = "withdrawal"
SKIP_CHARGE = "charge"
SKIP_ZERO = "zero_amount"
SKIP_DUPLICATE = "duplicate_in_file"

_DATE_FORMATS = (
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d-%m-%Y %I:%M:%S %p",
    "%d-%m-%Y %I:%M %p",
    "%d/%m/%Y %I:%M:%S %p",
    "%d/%m/%Y %I:%M %p",
    "%Y-%m-%d %I:%M:%S %p",
    "%Y/%m/%d %H:%M:%S",
    "%d.%m.%Y %H:%M:%S",
)
# The two 24-hour layouts portal exports use, parsed without strptime (it dominates big files).
_FAST_DMY = re.compile(r"(\d{2})-(\d{2})-(\d{4}) (\d{2}):(\d{2})(?::(\d{2}))?")
_FAST_YMD = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?")
_RECEIPT_RE = re.compile(r"^[A-Z0-9]{8,12}$")
_CURRENCY_RE = re.compile(r"^(?:KSH|KES|SH)\.?\s*", re.I)
# ASCII digits only: \d and Decimal also take other scripts' digits ("１５０").
_PLAIN_AMOUNT_RE = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?")
_MASKED_PHONE_RE = re.compile(r"(?<![\d*])(\+?\d{2,9}\*{2,}\d{2,4}|(?:\+?254|0)[17]\d{8})(?![\d*])")
_ACCOUNT_SUFFIX_RE = re.compile(r"\s+Acc\.?\s.*$", re.I)
# Money in is written "Merchant Payment from …", "Pay Bill from …"; a reversal may say "from" either way.
_MONEY_IN_RE = re.compile(r"\bfrom\b", re.I)
_REVERSAL_RE = re.compile(r"\breversal\b", re.I)
WHAT_PAID_IN = "Paid in"
WHAT_COMPLETED = "Completion time"


@dataclass(frozen=True)
class RowError:
    row_number: int
    column: str
    message: str


@dataclass(frozen=True)
class StatementRow:
    """One data row. ``row_number`` is the 1-based row/line in the file."""

    row_number: int
    receipt: str
    completed_at: dt.datetime
    details: str
    status: str
    paid_in: Decimal
    withdrawn: Decimal
    balance: Decimal | None
    reason_type: str
    other_party: str
    payer_masked: str | None
    payer_name: str | None
    disposition: str
    skip_reason: str | None
    account: str = ""
    linked_transaction_id: str = ""
    initiated_at: dt.datetime | None = None


@dataclass
class StatementParse:
    rows: list[StatementRow]
    errors: list[RowError]
    header_row: int
    warnings: list[str] = field(default_factory=list)

    @property
    def receipts(self) -> list[StatementRow]:
        return [row for row in self.rows if row.disposition == DISPOSITION_RECEIPT]


# --- public API --------------------------------------------------------------------------


def parse_statement(data: bytes, filename: str, *, now: dt.datetime | None = None) -> StatementParse:
    """Parse an Org portal export (CSV, XLSX, or the HTML table some portals name .xls).

    Raises :class:`StatementFormatError` for an empty file, an unreadable file or missing
    required columns (named in the message). Row-level problems, impossible receipts included
    (``now`` is the clock they are checked against), are returned as errors.
    """
    stream = statement_rows_stream(data, filename, now=now)
    rows = list(stream)
    return StatementParse(
        rows=rows, errors=stream.errors, header_row=stream.header_row, warnings=stream.warnings
    )


class StatementStream:
    """A statement's rows one at a time, as parse_statement reads them, without holding them.

    Iterating yields each kept row (receipts and skipped rows, in file order); row errors and
    warnings are collected in ``errors`` and ``warnings`` as the rows go by, so they are complete
    once the iteration ends. Iterate once.
    """

    def __init__(self, table, header_index: int, columns: dict[str, int], now: dt.datetime) -> None:
        self.header_row = header_index + 1
        self.errors: list[RowError] = []
        self.warnings: list[str] = []
        self._table, self._columns, self._now = table, columns, now
        # Receipts that carry money in anywhere in the file: read now, so the file's format
        # errors (a CSV that is not text, too many rows) are raised before any row is yielded.
        self._reused = _receipts_with_paid_in(self._body(), columns)

    def _body(self) -> Iterator[tuple[int, list[object]]]:
        return islice(enumerate(self._table, start=1), self.header_row, None)

    def __iter__(self) -> Iterator[StatementRow]:
        seen: set[str] = set()
        # _parse_row appends to a parse: this one shares the stream's errors and warnings.
        parse = StatementParse([], self.errors, self.header_row, self.warnings)
        for number, row in self._body():
            _parse_row(number, row, self._columns, self._reused, seen, parse, self._now)
            if parse.rows:
                yield parse.rows.pop()


def statement_rows_stream(data: bytes, filename: str, *, now: dt.datetime | None = None) -> StatementStream:
    """parse_statement as a stream (see StatementStream): the same rows, errors and warnings.

    Raises :class:`StatementFormatError` as parse_statement does, before any row is read.
    """
    if not data or data.isspace():  # isspace: strip()'s whitespace, without a copy of the file
        raise StatementFormatError(EMPTY_FILE)
    table = read_table(data, filename)
    header_index, columns = locate_header(table)
    return StatementStream(table, header_index, columns, now or dt.datetime.now(dt.UTC))


def parse_till_sms_receipts(text: str) -> list[ParsedSms]:
    """Merchant-side till SMS (kind ``till_received``) pasted as text, one or more."""
    return [sms for sms in find_sms_in_text(text) if sms.kind == KIND_TILL_RECEIVED]


# --- rows --------------------------------------------------------------------------------


def _cell(row: list[object], columns: dict[str, int], column: str) -> object:
    position = columns.get(column)
    if position is None or position >= len(row):
        return None
    value = row[position]
    return value.strip() if isinstance(value, str) else value


def _cells(row: list[object], columns: dict[str, int]) -> dict[str, object]:
    """The row's value under each column found (as _cell gives it), read in one pass."""
    width = len(row)
    cells = {}
    for column, position in columns.items():
        value = row[position] if position < width else None
        cells[column] = value.strip() if isinstance(value, str) else value
    return cells


def _text(value: object) -> str:
    """The value as text with its whitespace runs made one space and its ends trimmed."""
    if type(value) is str and value.isprintable() and "  " not in value and value[:1] != " " != value[-1:]:
        return value  # printable: its only whitespace is " ", single and inside, so nothing changes
    return "" if value is None else " ".join(str(value).split())


def _receipts_with_paid_in(body: Iterable[tuple[int, list[object]]], columns: dict[str, int]) -> set[str]:
    """Receipt numbers that carry money in somewhere in the file (so a withdrawn row
    reusing one is that payment's charge)."""
    receipts = set()
    for _, row in body:
        try:
            paid_in = parse_amount(_cell(row, columns, COL_PAID_IN))
        except ValueError:
            continue
        if paid_in > 0:
            receipts.add(_text(_cell(row, columns, COL_RECEIPT)).upper())
    return receipts


def _parse_row(
    number: int,
    row: list[object],
    columns: dict[str, int],
    reused: set[str],
    seen: set[str],
    parse: StatementParse,
    now: dt.datetime,
) -> None:
    if not any(_text(cell) for cell in row):
        return
    cells = _cells(row, columns)
    receipt = _text(cells.get(COL_RECEIPT)).upper()
    if not receipt:
        parse.warnings.append(WARN_NO_RECEIPT.format(row=number))
        return
    errors_before = len(parse.errors)
    if not _RECEIPT_RE.match(receipt):
        parse.errors.append(RowError(number, COL_RECEIPT, BAD_RECEIPT.format(value=receipt)))
    values = _row_values(number, cells, parse.errors)
    if len(parse.errors) > errors_before:
        return
    disposition, reason = _disposition(receipt, values, reused, seen)
    if disposition == DISPOSITION_RECEIPT or _money_in_without_money(values):
        parse.errors.extend(_impossible_receipt(number, values, now))
        if len(parse.errors) > errors_before:
            return
    payer_masked, payer_name = _payer(values["details"], values["other_party"])
    parse.rows.append(
        StatementRow(
            row_number=number,
            receipt=receipt,
            payer_masked=payer_masked,
            payer_name=payer_name,
            disposition=disposition,
            skip_reason=reason,
            **values,
        )
    )


def _row_values(number: int, cells: dict[str, object], errors: list[RowError]) -> dict:
    values: dict[str, object] = {}
    for key, column in (("paid_in", COL_PAID_IN), ("withdrawn", COL_WITHDRAWN), ("balance", COL_BALANCE)):
        try:
            values[key] = parse_amount(cells.get(column))
        except ValueError as exc:
            errors.append(RowError(number, column, str(exc)))
    if COL_BALANCE not in cells or _text(cells[COL_BALANCE]) == "":
        values["balance"] = None
    for key, column, required in (
        ("completed_at", COL_COMPLETED, True),
        ("initiated_at", COL_INITIATED, False),
    ):
        raw = cells.get(column)
        try:
            values[key] = parse_datetime(raw)
        except ValueError as exc:
            if required or _text(raw):
                errors.append(RowError(number, column, str(exc)))
            values[key] = None
    for key, column in (
        ("details", COL_DETAILS),
        ("status", COL_STATUS),
        ("reason_type", COL_REASON),
        ("other_party", COL_OTHER_PARTY),
        ("account", COL_ACCOUNT),
        ("linked_transaction_id", COL_LINKED),
    ):
        values[key] = _text(cells.get(column))
    return values


def _disposition(receipt: str, values: dict, reused: set[str], seen: set[str]) -> tuple[str, str | None]:
    """Only a Completed, not-charge, paid-in row seen for the first time is a receipt."""
    paid_in, withdrawn = values["paid_in"], values["withdrawn"]
    if values["status"].lower() != "completed":
        return DISPOSITION_SKIPPED, SKIP_NOT_COMPLETED
    if "charge" in values["details"].lower():
        return DISPOSITION_SKIPPED, SKIP_CHARGE
    if withdrawn > 0 or paid_in < 0:
        return DISPOSITION_SKIPPED, SKIP_CHARGE if receipt in reused else SKIP_WITHDRAWAL
    if paid_in == 0:
        return DISPOSITION_SKIPPED, SKIP_ZERO
    if receipt in seen:
        return DISPOSITION_SKIPPED, SKIP_DUPLICATE
    seen.add(receipt)
    return DISPOSITION_RECEIPT, None


def _money_in_without_money(values: dict) -> bool:
    """A Completed payment from someone (not a charge, nothing withdrawn) with no positive Paid In:
    a broken receipt row, which must not pass as a skipped one."""
    details = values["details"]
    return (
        values["status"].lower() == "completed"
        and "charge" not in details.lower()
        and values["withdrawn"] == 0
        and values["paid_in"] <= 0
        and bool(_MONEY_IN_RE.search(details))
        and not _REVERSAL_RE.search(details)
    )


def _impossible_receipt(number: int, values: dict, now: dt.datetime) -> list[RowError]:
    """The receipt's amount and completion time checked against the plausible ranges.

    On success Paid In is replaced by the amount in cents; otherwise one error per bad value.
    """
    errors = []
    try:
        values["paid_in"] = plausible_amount(format(values["paid_in"], "f"), what=WHAT_PAID_IN)
    except Implausible as exc:
        errors.append(RowError(number, COL_PAID_IN, exc.message))
    try:
        plausible_receipt_time(values["completed_at"], what=WHAT_COMPLETED, now=now)
    except Implausible as exc:
        errors.append(RowError(number, COL_COMPLETED, exc.message))
    return errors


def _payer(details: str, other_party: str) -> tuple[str | None, str | None]:
    """Payer phone (masked as printed, or normalised when complete) and name, from
    ``Pay Bill from 2547****0111 - MARY Acc. X`` / ``Merchant Payment from 0746***921 - isaac``
    in Details, else from Other Party Info (``2547****0111 - MARY ATIENO``)."""
    phone, name = _phone_and_name(details)
    if phone is None:
        phone, name = _phone_and_name(other_party)
    elif not name:
        name = _phone_and_name(other_party)[1]
    return phone, name


def _phone_and_name(text: str) -> tuple[str | None, str | None]:
    match = _MASKED_PHONE_RE.search(text or "")
    if not match:
        return None, None
    raw = match.group(1)
    phone = raw if "*" in raw else (try_normalise_msisdn(raw) or raw)
    name = _ACCOUNT_SUFFIX_RE.sub("", text[match.end() :]).strip(" -:")
    return phone, (name or None)


# --- values ------------------------------------------------------------------------------


def parse_amount(value: object) -> Decimal:
    """``"1,200.00"`` / ``"-13.75"`` / ``"(13.75)"`` / number cell -> Decimal; blank -> 0.

    Raises ValueError with a readable message for anything else (floats are read through
    ``str`` so no binary noise leaks in). Values are not rounded: ``150.005`` stays as written,
    for the receipt check to refuse; a number of any size is read without error.
    """
    if type(value) is str and _PLAIN_AMOUNT_RE.fullmatch(value):
        return Decimal(value)  # the usual cell ("1200.00", "-13.75"): what the steps below give it
    if value is None or (isinstance(value, str) and not value.strip()):
        return Decimal("0.00")
    if isinstance(value, bool):
        raise ValueError(BAD_AMOUNT.format(value=str(value)))
    if isinstance(value, int | float | Decimal):
        amount = Decimal(str(value))
        if not amount.is_finite():
            raise ValueError(BAD_AMOUNT.format(value=str(value)))
        return amount
    text = _CURRENCY_RE.sub("", str(value).strip().replace("\u00a0", ""))
    negative = text.startswith("(") and text.endswith(")")
    text = text.strip("()").replace(",", "").replace(" ", "")
    if not _PLAIN_AMOUNT_RE.fullmatch(text):
        raise ValueError(BAD_AMOUNT.format(value=str(value)))
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(BAD_AMOUNT.format(value=str(value)))
    return -amount if negative else amount


def parse_datetime(value: object) -> dt.datetime:
    """A statement date-time (text in any :data:`_DATE_FORMATS`, or an XLSX datetime cell)
    as an aware Africa/Nairobi datetime. Raises ValueError with a readable message."""
    if isinstance(value, dt.datetime):
        return as_nairobi(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and 20000 < value < 80000:
        return from_excel(value).replace(tzinfo=NAIROBI)
    text = " ".join(str(value or "").split())
    if not text:
        raise ValueError(MISSING_DATE)
    fast = _fast_datetime(text)
    if fast is not None:
        return fast
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=NAIROBI)
        except ValueError:
            continue
    raise ValueError(BAD_DATE.format(value=text))


def _fast_datetime(text: str) -> dt.datetime | None:
    """`dd-mm-yyyy HH:MM[:SS]` or `yyyy-mm-dd HH:MM[:SS]`; None for anything else or an invalid date."""
    m = _FAST_DMY.fullmatch(text)
    if m:
        day, month, year, hour, minute, second = m.groups()
    else:
        m = _FAST_YMD.fullmatch(text)
        if not m:
            return None
        year, month, day, hour, minute, second = m.groups()
    try:
        return dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), tzinfo=NAIROBI
        )
    except ValueError:
        return None  # e.g. 31-02-2026: the slow path words the error
