"""Reading uploaded files safely, and writing exports spreadsheets will not run.

Every upload (M-Pesa statement, WhatsApp chat export, bundle catalogue) goes through these
checks, in the admin and in the management commands alike:

- :func:`read_limited` reads a file in chunks and stops as soon as it passes its limit;
- :func:`zip_checked` refuses an archive whose central directory declares a member too large
  or compressed too well (a zip bomb), before anything is decompressed;
- :func:`zip_member_checked` decompresses one member in chunks and stops past its limit,
  whatever size the archive declares;
- :func:`xlsx_rows` streams a worksheet (an .xlsx is a zip: it is checked first) trusting no
  declared dimension: it reads at most ``max_cols`` columns and refuses past ``max_rows`` rows;
- :func:`decode_text` is the one encoding detection: BOM (UTF-8 or UTF-16), else UTF-8, else
  Windows-1252;
- :func:`csv_rows` reads CSV text and refuses past ``max_rows`` rows.

Each refusal is an :class:`UploadRefused` carrying one message for the person who uploaded.

On the way out, :func:`spreadsheet_safe` neutralises a text cell a spreadsheet would read as a
formula (``=``, ``+``, ``-``, ``@``, tab, CR first) with a leading ``'`` for CSV; numbers, and
text that is just a number, are left alone. :func:`xlsx_text_cell` makes an openpyxl cell hold
such text as a plain string, never a formula.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import os
import re
import zipfile
from collections.abc import Iterator

from django.conf import settings

CHUNK_BYTES = 64 * 1024
# Members smaller than this are never refused for their ratio (a tiny styles.xml compresses well).
RATIO_FLOOR_BYTES = 1024 * 1024

TOO_LARGE = "The {what} is larger than {limit}; the largest accepted is {limit}. Nothing was saved."
TOO_MANY_ROWS = "The {what} has more than {limit:,} rows; split it into smaller files. Nothing was saved."
ZIP_UNREADABLE = "The {what} is not a readable .zip archive. Nothing was saved."
ZIP_MEMBER_TOO_LARGE = (
    "The {what} holds {name!r}, which unpacks to more than {limit}; the largest accepted is {limit}. "
    "Nothing was saved."
)
ZIP_RATIO = (
    "The {what} holds {name!r}, which is compressed more than {ratio} to 1: refused as a zip bomb. "
    "Nothing was saved."
)
ZIP_TOO_MANY_MEMBERS = "The {what} holds more than {limit:,} files. Nothing was saved."
XLSX_UNREADABLE = "The {what} could not be opened as a spreadsheet; save it again as .xlsx or CSV."
CSV_UNREADABLE = "The {what} could not be read as CSV text."

ZIP_MAX_MEMBERS = 10_000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER_RE = re.compile(r"[-+]?(?:\d+(?:[.,]\d+)*)(?:\.\d+)?")


class UploadRefused(ValueError):
    """An upload refused before or while reading it; ``message`` is for the person uploading."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def limit(name: str) -> int:
    """An upload limit from settings (see the settings table in README.md)."""
    return int(getattr(settings, name))


def human_size(size: int) -> str:
    if size >= 1024 * 1024 and size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MB"
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size // 1024} KB"
    return f"{size} bytes"


# --- reading bytes ---------------------------------------------------------------------------


def read_limited(file, max_bytes: int, *, what: str = "file") -> bytes:
    """All of ``file`` (an open binary file, an UploadedFile or a path) as bytes, read in chunks.

    Refuses a file whose stated size is over ``max_bytes`` without reading it, and stops reading
    as soon as more than ``max_bytes`` arrived (the stated size is not trusted).
    """
    if isinstance(file, str | os.PathLike):
        with open(file, "rb") as fh:
            return read_limited(fh, max_bytes, what=what)
    if isinstance(file, bytes):
        if len(file) > max_bytes:
            raise UploadRefused(TOO_LARGE.format(what=what, limit=human_size(max_bytes)))
        return file
    size = getattr(file, "size", None)
    if isinstance(size, int) and size > max_bytes:
        raise UploadRefused(TOO_LARGE.format(what=what, limit=human_size(max_bytes)))
    if hasattr(file, "seek"):
        with contextlib.suppress(OSError, ValueError):
            file.seek(0)
    buffer = io.BytesIO()
    while True:
        chunk = file.read(CHUNK_BYTES)
        if not chunk:
            break
        buffer.write(chunk)
        if buffer.tell() > max_bytes:
            raise UploadRefused(TOO_LARGE.format(what=what, limit=human_size(max_bytes)))
    return buffer.getvalue()


def is_zip(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"


# --- zip archives ----------------------------------------------------------------------------


def zip_checked(data: bytes, *, max_member_bytes: int, what: str = "file") -> zipfile.ZipFile:
    """Open ``data`` as a zip after checking its central directory: every member at most
    ``max_member_bytes`` unpacked and compressed at most UPLOAD_ZIP_MAX_RATIO to 1."""
    max_ratio = limit("UPLOAD_ZIP_MAX_RATIO")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise UploadRefused(ZIP_UNREADABLE.format(what=what))
    if len(infos) > ZIP_MAX_MEMBERS:
        raise UploadRefused(ZIP_TOO_MANY_MEMBERS.format(what=what, limit=ZIP_MAX_MEMBERS))
    for info in infos:
        _member_within_limits(info, info.file_size, max_member_bytes, max_ratio, what)
    return archive


def _member_within_limits(info: zipfile.ZipInfo, size: int, max_bytes: int, max_ratio: int, what: str):
    if size > max_bytes:
        raise UploadRefused(
            ZIP_MEMBER_TOO_LARGE.format(what=what, name=info.filename, limit=human_size(max_bytes))
        )
    if size > RATIO_FLOOR_BYTES and size > max(info.compress_size, 1) * max_ratio:
        raise UploadRefused(ZIP_RATIO.format(what=what, name=info.filename, ratio=max_ratio))


def zip_member_checked(archive: zipfile.ZipFile, name: str, *, max_bytes: int, what: str = "file") -> bytes:
    """One member of a checked archive, decompressed in chunks: refused as soon as it passes
    ``max_bytes`` or the compression-ratio limit, whatever its declared size."""
    max_ratio = limit("UPLOAD_ZIP_MAX_RATIO")
    info = archive.getinfo(name)
    _member_within_limits(info, info.file_size, max_bytes, max_ratio, what)
    buffer = io.BytesIO()
    try:
        with archive.open(info) as member:
            while True:
                chunk = member.read(CHUNK_BYTES)
                if not chunk:
                    break
                buffer.write(chunk)
                _member_within_limits(info, buffer.tell(), max_bytes, max_ratio, what)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError, ValueError):
        raise UploadRefused(ZIP_UNREADABLE.format(what=what))
    return buffer.getvalue()


# --- text ------------------------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    """The one encoding detection for uploads: a BOM says UTF-8 or UTF-16; else UTF-8 if it
    decodes; else Windows-1252 (bytes it leaves undefined become U+FFFD)."""
    if data.startswith(codecs.BOM_UTF8):
        return data.decode("utf-8-sig", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def csv_rows(
    text: str, *, max_rows: int, delimiter: str = ",", what: str = "file", header_rows: int = 0
) -> list[list[str]]:
    """CSV text as rows; refused past ``max_rows`` rows (not counting ``header_rows``)."""
    rows = []
    try:
        for row in csv.reader(io.StringIO(text), delimiter=delimiter):
            if len(rows) >= max_rows + header_rows:
                raise UploadRefused(TOO_MANY_ROWS.format(what=what, limit=max_rows))
            rows.append(row)
    except csv.Error:
        raise UploadRefused(CSV_UNREADABLE.format(what=what))
    return rows


# --- spreadsheets ----------------------------------------------------------------------------


def xlsx_sheets(
    data: bytes,
    *,
    max_rows: int,
    max_cols: int,
    what: str = "file",
    first_only: bool = False,
    header_rows: int = 0,
) -> list[list[list[object]]]:
    """The rows of each worksheet of an .xlsx (values only, at most ``max_cols`` columns).

    The zip is checked before openpyxl opens it; each sheet is streamed (read-only) and its
    declared dimension ignored; more than ``max_rows`` rows in all the sheets is refused.
    """
    from openpyxl import load_workbook

    zip_checked(data, max_member_bytes=limit("UPLOAD_XLSX_MEMBER_MAX_BYTES"), what=what)
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except UploadRefused:
        raise
    except Exception:  # noqa: BLE001 - openpyxl raises many types for corrupt files
        raise UploadRefused(XLSX_UNREADABLE.format(what=what))
    try:
        sheets, total = [], 0
        for sheet in workbook.worksheets[:1] if first_only else workbook.worksheets:
            read = xlsx_rows(sheet, max_rows=max_rows, max_cols=max_cols, what=what, header_rows=header_rows)
            rows = list(read)
            total += len(rows)
            if total > max_rows + header_rows * len(workbook.worksheets):  # the limit holds for all sheets
                raise UploadRefused(TOO_MANY_ROWS.format(what=what, limit=max_rows))
            sheets.append(rows)
        return sheets
    except UploadRefused:
        raise
    except Exception:  # noqa: BLE001 - a corrupt sheet, found while streaming it
        raise UploadRefused(XLSX_UNREADABLE.format(what=what))
    finally:
        workbook.close()


def xlsx_rows(
    sheet, *, max_rows: int, max_cols: int, what: str = "file", header_rows: int = 0
) -> Iterator[list[object]]:
    """Stream a read-only worksheet's rows, trusting no declared dimension. Trailing empty
    cells are dropped; a row past ``max_rows`` (not counting ``header_rows``) is refused."""
    if hasattr(sheet, "reset_dimensions"):
        sheet.reset_dimensions()  # the declared <dimension> is the attacker's to choose
    for count, row in enumerate(sheet.iter_rows(max_col=max_cols, values_only=True), start=1):
        if count > max_rows + header_rows:
            raise UploadRefused(TOO_MANY_ROWS.format(what=what, limit=max_rows))
        values = list(row)
        while values and values[-1] is None:
            values.pop()
        yield values


# --- exports ---------------------------------------------------------------------------------


def spreadsheet_safe(value):
    """A CSV cell a spreadsheet will not run: text starting with ``=``, ``+``, ``-``, ``@``,
    tab or CR gets a leading ``'``. Numbers (and text that is only a number, e.g. "-150.00")
    are returned unchanged."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    if _NUMBER_RE.fullmatch(value):
        return value
    return "'" + value


def is_formula_like(value) -> bool:
    return spreadsheet_safe(value) is not value


def xlsx_text_cell(cell):
    """Make an openpyxl cell holding formula-like text a plain string cell, never a formula."""
    if isinstance(cell.value, str) and cell.data_type == "f":
        cell.data_type = "s"
    return cell
