"""A streaming XLSX writer: rows go into the zip as XML text, with no cell object per value.

openpyxl builds a Python object per cell (~4,000 rows/s); here a row is one string, made in
Python (`row_xml`) or by PostgreSQL (`ledger.books.exports`), written straight into the sheet's
deflate stream. Text is an inline string (`t="inlineStr"`), so a memo like "=SUM(A1)" is never a
formula; numbers are `<v>`; empty cells are `<c/>`. Cells and rows carry no `r=` reference:
readers (Excel, LibreOffice, openpyxl) count them in order, which lets the database render rows
without knowing which sheet or line they land on.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Iterable, Sequence
from decimal import Decimal

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

# Cell styles (indexes into styles.xml's cellXfs).
STYLE_HEADER = 1  # bold
STYLE_DATETIME = 2  # yyyy-mm-dd hh:mm:ss
STYLE_MONEY = 3  # #,##0.00 (built-in number format 4)
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
EXCEL_EPOCH = dt.datetime(1899, 12, 30)  # serial 25569 is 1970-01-01

EMPTY = "<c/>"
TEXT_OPEN = '<c t="inlineStr"><is><t xml:space="preserve">'
TEXT_CLOSE = "</t></is></c>"
# XML 1.0 has no way to write these: they are dropped (the database cannot hold NUL at all).
FORBIDDEN_CHARS = "[\x01-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]"
_FORBIDDEN = re.compile(FORBIDDEN_CHARS + "|[\x00\ud800-\udfff]")
# A bare CR would come back as LF (XML end-of-line handling): it is written as a reference.
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


def xml_text(value: str) -> str:
    """Text as XML character data: escaped, without the characters XML 1.0 forbids."""
    return _FORBIDDEN.sub("", value).translate(_ESCAPES)


def text_cell(value) -> str:
    return TEXT_OPEN + xml_text(value) + TEXT_CLOSE if value else EMPTY


def money_cell(value: Decimal | None) -> str:
    return EMPTY if value is None else f'<c s="{STYLE_MONEY}"><v>{value:f}</v></c>'


def excel_serial(when: dt.datetime) -> float:
    """A wall-clock datetime as Excel's serial day number (Excel has no time zones)."""
    delta = when.replace(tzinfo=None) - EXCEL_EPOCH
    return delta.days + (delta.seconds + delta.microseconds / 1_000_000) / 86_400


def datetime_cell(when: dt.datetime) -> str:
    return f'<c s="{STYLE_DATETIME}"><v>{excel_serial(when)!r}</v></c>'


def header_xml(titles: Sequence[str]) -> str:
    cells = "".join(
        f'<c t="inlineStr" s="{STYLE_HEADER}"><is><t>{xml_text(title)}</t></is></c>' for title in titles
    )
    return f"<row>{cells}</row>"


def _sheet_head(widths: Sequence[float]) -> str:
    cols = "".join(
        f'<col min="{i}" max="{i}" width="{width}" customWidth="1"/>' for i, width in enumerate(widths, 1)
    )
    return (
        f'{DECLARATION}<worksheet xmlns="{MAIN_NS}" xmlns:r="{REL_NS}">'
        # The header stays in view while scrolling.
        '<sheetViews><sheetView workbookViewId="0">'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/>'
        "</sheetView></sheetViews>"
        '<sheetFormatPr defaultRowHeight="15"/>'
        f"<cols>{cols}</cols><sheetData>"
    )


_SHEET_TAIL = "</sheetData></worksheet>"

STYLES = (
    f'{DECLARATION}<styleSheet xmlns="{MAIN_NS}">'
    f'<numFmts count="1"><numFmt numFmtId="164" formatCode="{DATETIME_FORMAT}"/></numFmts>'
    '<fonts count="2">'
    '<font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    "</fonts>"
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="4" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


class XlsxStream:
    """Write one workbook of row strings, starting a new sheet (header repeated) when one is full.

    `write(rows)` takes rendered `<row>…</row>` strings; `close()` writes the workbook parts that
    name the sheets. Use as a context manager.
    """

    def __init__(
        self,
        path: str,
        *,
        header: Sequence[str],
        widths: Sequence[float],
        title: str,
        sheet_max_rows: int,
        compresslevel: int = 1,
    ):
        self.zip = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel)
        self.header = header_xml(header)
        self.head = _sheet_head(widths)
        self.title = title
        self.sheet_max_rows = sheet_max_rows
        self.sheets: list[str] = []
        self.stream = None
        self.in_sheet = 0
        self.written = 0
        self._new_sheet()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()

    def _new_sheet(self) -> None:
        if self.stream is not None:
            self.stream.write(_SHEET_TAIL.encode())
            self.stream.close()
        number = len(self.sheets) + 1
        self.sheets.append(self.title if number == 1 else f"{self.title} {number}")
        self.stream = self.zip.open(f"xl/worksheets/sheet{number}.xml", "w")
        self.stream.write((self.head + self.header).encode())
        self.in_sheet = 0

    def write(self, rows: Sequence[str]) -> None:
        """Append rendered rows (a list, e.g. one fetched chunk) in order."""
        start = 0
        while start < len(rows):
            if self.in_sheet >= self.sheet_max_rows:  # a full sheet: carry on in the next one
                self._new_sheet()
            stop = min(len(rows), start + self.sheet_max_rows - self.in_sheet)
            self.stream.write("".join(rows[start:stop]).encode())
            self.in_sheet += stop - start
            self.written += stop - start
            start = stop

    def close(self) -> None:
        if self.stream is None:
            return
        self.stream.write(_SHEET_TAIL.encode())
        self.stream.close()
        self.stream = None
        count = len(self.sheets)
        self.zip.writestr("[Content_Types].xml", _content_types(count))
        self.zip.writestr(
            "_rels/.rels",
            f'{DECLARATION}<Relationships xmlns="{PKG_REL_NS}">'
            f'<Relationship Id="rId1" Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>",
        )
        sheets = "".join(
            f'<sheet name="{xml_text(name)}" sheetId="{i}" r:id="rId{i}"/>'
            for i, name in enumerate(self.sheets, 1)
        )
        self.zip.writestr(
            "xl/workbook.xml",
            f'{DECLARATION}<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}">'
            f"<bookViews><workbookView/></bookViews><sheets>{sheets}</sheets></workbook>",
        )
        rels = "".join(
            f'<Relationship Id="rId{i}" Type="{REL_NS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
            for i in range(1, count + 1)
        )
        self.zip.writestr(
            "xl/_rels/workbook.xml.rels",
            f'{DECLARATION}<Relationships xmlns="{PKG_REL_NS}">{rels}'
            f'<Relationship Id="rId{count + 1}" Type="{REL_NS}/styles" Target="styles.xml"/>'
            "</Relationships>",
        )
        self.zip.writestr("xl/styles.xml", STYLES)
        self.zip.close()


def _content_types(sheets: int) -> str:
    sheet_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{sheet_type}"/>'
        for i in range(1, sheets + 1)
    )
    return (
        f'{DECLARATION}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        f"{overrides}</Types>"
    )


def write_rows(stream: XlsxStream, rows: Iterable[str], chunk: int) -> None:
    """Feed an iterable of row strings to `stream` `chunk` at a time."""
    batch: list[str] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= chunk:
            stream.write(batch)
            batch = []
    if batch:
        stream.write(batch)


# ---------------------------------------------------------------------------------------------
# Rows rendered by PostgreSQL (ledger.books.exports.sql_xlsx): the `<row>` the cells above make,
# built by the database as one text column from a query of these columns.
# ---------------------------------------------------------------------------------------------
ROW_COLUMNS = ("number", "posted", "code", "name", "amount", "ref", "receipt", "channel", "memo")


def _text_sql(column: str) -> str:
    # Two parameters: the characters that need escaping, then those XML forbids (dropped).
    # Most text needs nothing: the regex test is far cheaper than translate() on every cell.
    escaped = f"translate({column}, %s, '')"
    for char, entity in (("'&'", "&amp;"), ("'<'", "&lt;"), ("'>'", "&gt;"), ("chr(13)", "&#13;")):
        escaped = f"replace({escaped}, {char}, '{entity}')"
    return (
        f"CASE WHEN coalesce({column}, '') = '' THEN '{EMPTY}' "
        f"WHEN {column} ~ %s THEN '{TEXT_OPEN}' || {escaped} || '{TEXT_CLOSE}' "
        f"ELSE '{TEXT_OPEN}' || {column} || '{TEXT_CLOSE}' END"
    )


def _money_sql(value: str) -> str:
    return f"""'<c s="{STYLE_MONEY}"><v>' || ({value})::text || '</v></c>'"""


def row_sql(inner: str) -> str:
    serial = "extract(epoch from timezone('Africa/Nairobi', posted)) / 86400 + 25569"
    cells = [
        _text_sql("number"),
        f"""'<c s="{STYLE_DATETIME}"><v>' || ({serial})::text || '</v></c>'""",
        _text_sql("code"),
        _text_sql("name"),
        f"CASE WHEN amount > 0 THEN {_money_sql('amount')} ELSE '{EMPTY}' END",
        f"CASE WHEN amount < 0 THEN {_money_sql('-amount')} ELSE '{EMPTY}' END",
        *(_text_sql(column) for column in ("ref", "receipt", "channel", "memo")),
    ]
    # Only constants and the queryset's own compiled SQL: the values travel as parameters.
    row = " || ".join(cells)
    return f"SELECT '<row>' || {row} || '</row>' FROM ({inner}) AS x({', '.join(ROW_COLUMNS)})"  # noqa: S608


_SQL_FORBIDDEN = "".join(chr(c) for c in (*range(1, 9), 11, 12, *range(14, 32), 0xFFFE, 0xFFFF))
# The text cells' parameters, in the order _text_sql uses them, for the seven text cells.
ROW_TEXT_PARAMS = (f"[&<>\r{_SQL_FORBIDDEN}]", _SQL_FORBIDDEN) * 7
