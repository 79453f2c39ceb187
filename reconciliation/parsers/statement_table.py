"""Reading a statement file into rows: CSV (read row by row, as often as the parser needs, never
held as a list), XLSX (streamed with the shared upload checks) or the portal's HTML table, and
finding the header row and its columns."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from itertools import islice

from console.kernel.uploads import (
    TOO_MANY_ROWS,
    XLSX_UNREADABLE,
    ZIP_UNREADABLE,
    UploadRefused,
    decode_text,
    is_zip,
    limit,
    read_limited,
    xlsx_sheets,
)

EMPTY_FILE = "The statement file is empty."
NO_HEADER = (
    'This is not an M-PESA statement export: no header row with a "Receipt No." cell was found. '
    "Missing columns: {missing}."
)
MISSING_COLUMNS = "The statement is missing these columns: {missing}."
OLD_XLS = "Old-style .xls files cannot be read; open the file and save it as .xlsx or CSV, then upload again."
UNREADABLE_XLSX = "The spreadsheet could not be opened; save it again as .xlsx or CSV."
UNREADABLE_TEXT = "The file could not be read as text; upload the CSV or XLSX export from the M-PESA portal."

COL_RECEIPT = "Receipt No."
COL_COMPLETED = "Completion Time"
COL_INITIATED = "Initiation Time"
COL_DETAILS = "Details"
COL_STATUS = "Transaction Status"
COL_PAID_IN = "Paid In"
COL_WITHDRAWN = "Withdrawn"
COL_BALANCE = "Balance"
COL_REASON = "Reason Type"
COL_OTHER_PARTY = "Other Party Info"
COL_LINKED = "Linked Transaction ID"
COL_ACCOUNT = "A/C No."
REQUIRED_COLUMNS = (COL_RECEIPT, COL_COMPLETED, COL_DETAILS, COL_STATUS, COL_PAID_IN, COL_WITHDRAWN)
OPTIONAL_COLUMNS = (COL_INITIATED, COL_BALANCE, COL_REASON, COL_OTHER_PARTY, COL_LINKED, COL_ACCOUNT)

# Header spellings seen in exports (compared after lower-casing, dropping "." and spaces).
_ALIASES = {
    COL_RECEIPT: ("receiptno", "receipt", "receiptnumber", "transactionid"),
    COL_COMPLETED: ("completiontime", "completiondate", "completedtime"),
    COL_INITIATED: ("initiationtime",),
    COL_DETAILS: ("details", "transactiondetails"),
    COL_STATUS: ("transactionstatus", "status"),
    COL_PAID_IN: ("paidin",),
    COL_WITHDRAWN: ("withdrawn", "withdrawal", "paidout"),
    COL_BALANCE: ("balance",),
    COL_REASON: ("reasontype", "transactiontype"),
    COL_OTHER_PARTY: ("otherpartyinfo", "otherparty"),
    COL_LINKED: ("linkedtransactionid",),
    COL_ACCOUNT: ("a/cno", "acno", "accountno", "accountnumber"),
}
_HEADER_SCAN_ROWS = 50
_MAX_COLUMNS = 30  # a portal export has 12; columns beyond this are never read
WHAT_FILE = "statement file"
_LINE_RE = re.compile("[^\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]+")


class StatementFormatError(ValueError):
    """The file is not a readable M-PESA Org portal statement."""


# --- reading the table -------------------------------------------------------------------


def read_table(data: bytes, filename: str) -> Iterable[list[object]]:
    """The file's rows, to iterate (more than once if need be). A CSV is read as it is iterated,
    so its errors (unreadable, too many rows) are raised by the iteration, as StatementFormatError."""
    try:
        read_limited(data, limit("UPLOAD_STATEMENT_MAX_BYTES"), what=WHAT_FILE)
        return _read_any(data, filename)
    except UploadRefused as exc:
        raise StatementFormatError(exc.message)


def _read_any(data: bytes, filename: str) -> Iterable[list[object]]:
    name = filename.lower()
    if is_zip(data):
        return _read_xlsx(data)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise StatementFormatError(OLD_XLS)
    text = decode_text(data)
    if name.endswith((".xls", ".htm", ".html")) and "<table" in text[:5000].lower():
        return _read_html(text)
    return _read_csv(text)


def _read_xlsx(data: bytes) -> list[list[object]]:
    """Every sheet streamed with the shared upload checks (zip limits, row limit, at most
    ``_MAX_COLUMNS`` columns, no trust in the declared dimension); the one with the header."""
    try:
        sheets = xlsx_sheets(
            data, max_rows=limit("UPLOAD_STATEMENT_MAX_ROWS"), max_cols=_MAX_COLUMNS, what=WHAT_FILE
        )
    except UploadRefused as exc:
        if exc.message in (XLSX_UNREADABLE.format(what=WHAT_FILE), ZIP_UNREADABLE.format(what=WHAT_FILE)):
            raise StatementFormatError(UNREADABLE_XLSX)
        raise
    for rows in sheets:
        if _find_header_index(rows) is not None:
            return rows
    return sheets[0] if sheets else []


def _read_csv(text: str) -> CsvTable:
    lines = (m.group() for m in _LINE_RE.finditer(text))  # str.splitlines's lines, one at a time
    sample = next((line for line in lines if "receipt" in line.lower()), text[:2000])
    delimiter = max((",", ";", "\t", "|"), key=sample.count)
    return CsvTable(text, delimiter=delimiter, max_rows=limit("UPLOAD_STATEMENT_MAX_ROWS"))


class CsvTable:
    """CSV text as rows, read afresh on each iteration (console.kernel.uploads.csv_rows's checks:
    past ``max_rows`` rows refused; text that is not CSV refused)."""

    def __init__(self, text: str, *, delimiter: str, max_rows: int) -> None:
        self.text, self.delimiter, self.max_rows = text, delimiter, max_rows

    def __iter__(self) -> Iterator[list[object]]:
        try:
            for count, row in enumerate(csv.reader(_lines(self.text), delimiter=self.delimiter)):
                if count >= self.max_rows:
                    raise StatementFormatError(TOO_MANY_ROWS.format(what=WHAT_FILE, limit=self.max_rows))
                yield row
        except csv.Error:
            raise StatementFormatError(UNREADABLE_TEXT)


def _lines(text: str) -> Iterator[str]:
    """The lines of text as io.StringIO(text) gives them (each up to and with its "\\n"), sliced one
    at a time: a StringIO holds the text as 4 bytes a character, 4× the file for a large CSV."""
    start, end = 0, len(text)
    while start < end:
        stop = text.find("\n", start)
        stop = end if stop == -1 else stop + 1
        yield text[start:stop]
        start = stop


class _TableParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[object]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "tr":
            max_rows = limit("UPLOAD_STATEMENT_MAX_ROWS")
            if len(self.rows) >= max_rows:
                raise UploadRefused(TOO_MANY_ROWS.format(what=WHAT_FILE, limit=max_rows))
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _read_html(text: str) -> list[list[object]]:
    parser = _TableParser()
    parser.feed(text)
    return parser.rows


def _header_key(value: object) -> str:
    return re.sub(r"[\s.]", "", str(value or "")).lower()


def _find_header_index(rows: list[list[object]]) -> int | None:
    for index, row in enumerate(rows[:_HEADER_SCAN_ROWS]):
        if any(_header_key(cell) in ("receiptno", "receiptnumber") for cell in row):
            return index
    return None


def locate_header(table: Iterable[list[object]]) -> tuple[int, dict[str, int]]:
    head = list(islice(table, _HEADER_SCAN_ROWS))
    index = _find_header_index(head)
    if index is None:
        if not any(any(str(c or "").strip() for c in row) for row in table):
            raise StatementFormatError(EMPTY_FILE)
        raise StatementFormatError(NO_HEADER.format(missing=", ".join(REQUIRED_COLUMNS)))
    keys = [_header_key(cell) for cell in head[index]]
    columns: dict[str, int] = {}
    for column, aliases in _ALIASES.items():
        position = next((i for i, key in enumerate(keys) if key in aliases), None)
        if position is not None:
            columns[column] = position
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise StatementFormatError(MISSING_COLUMNS.format(missing=", ".join(missing)))
    return index, columns
