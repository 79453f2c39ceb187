"""The streaming XLSX writer (ledger.books.xlsx): the workbook openpyxl wrote, at CSV-like speed.

Read back with openpyxl, the new file holds the same values as the openpyxl writer it replaced
(kept below as the reference), with the same layout; on PostgreSQL the rows rendered in SQL give
the same workbook as the rows rendered in Python.
"""

import datetime as dt
import zipfile
from decimal import Decimal
from xml.etree import ElementTree

import openpyxl
import pytest
from django.db import connection

from console.kernel.clock import NAIROBI
from ledger import books
from ledger.books import exports
from ledger.books.selectors import EXPORT_COLUMNS

pytestmark = pytest.mark.django_db
D = Decimal

TRICKY_MEMOS = [
    "=SUM(A1)",
    "<b>&amp;</b> & <i>",
    "He said \"hi\" & 'bye'",
    "line one\nline two\tand a tab",
    "Ünïcödé – M-Pesa ✓ 日本語 😀",
    "  spaces either side  ",
    "-150.00",
    "+254712345678",
    "@everyone",
    "",
]


@pytest.fixture
def tricky():
    """One till receipt per tricky memo, a minute apart (with a fraction of a second)."""
    start = dt.datetime(2026, 3, 2, 0, 0, 1, 250_000, tzinfo=NAIROBI)
    entries = []
    for index, memo in enumerate(TRICKY_MEMOS):
        amount = D("1234567.89") if index == 0 else D("99.50") + index
        entries.append(
            books.entry_post(
                kind="till_receipt",
                lines=[("mpesa_till", amount), ("unallocated_receipts", -amount)],
                receipt_code=f"TK1ABC{index:04d}" if index % 2 else "",
                channel="till" if index % 3 else "",
                memo=memo,
                posted_at=start + dt.timedelta(minutes=index),
            )
        )
    return entries


def _filters():
    return exports.export_filters(date_from=dt.date(2026, 3, 1), date_to=dt.date(2026, 3, 3))


def reference_xlsx(rows, path, sheet_max_rows=exports.SHEET_MAX_ROWS):
    """The openpyxl write-only writer the export used before (values and layout to match)."""
    from openpyxl.cell import WriteOnlyCell

    wb = openpyxl.Workbook(write_only=True)
    ws = None
    in_sheet = sheet_max_rows
    for number, when, code, name, debit, credit, ref, receipt, channel, memo in rows:
        if in_sheet == sheet_max_rows:
            ws = wb.create_sheet("Postings" if ws is None else f"Postings {len(wb.worksheets) + 1}")
            ws.append(EXPORT_COLUMNS)
            in_sheet = 0
        in_sheet += 1

        def text(value):
            if not value:
                return value
            cell = WriteOnlyCell(ws, value=value)
            if cell.data_type == "f":
                cell.data_type = "s"
            return cell

        money = [None if v is None else WriteOnlyCell(ws, value=v) for v in (debit, credit)]
        ws.append(
            [text(number), when.replace(tzinfo=None), text(code), text(name), *money]
            + [text(v) for v in (ref, receipt, channel, memo)]
        )
    wb.save(path)


def _values(path):
    book = openpyxl.load_workbook(path, read_only=True)
    return {name: [tuple(row) for row in book[name].iter_rows(values_only=True)] for name in book.sheetnames}


def _python_xlsx(path):
    exports.write_xlsx(exports.export_rows(_filters()), str(path))


def test_values_equal_the_openpyxl_writers_for_tricky_text(tricky, tmp_path):
    _python_xlsx(tmp_path / "new.xlsx")
    reference_xlsx(exports.export_rows(_filters()), tmp_path / "old.xlsx")
    new, old = _values(tmp_path / "new.xlsx"), _values(tmp_path / "old.xlsx")
    assert new == old
    rows = new["Postings"]
    assert list(rows[0]) == EXPORT_COLUMNS and len(rows) == 1 + 2 * len(TRICKY_MEMOS)
    memos = [row[9] for row in rows[1::2]]
    assert memos == [memo or None for memo in TRICKY_MEMOS]  # an empty memo is an empty cell
    assert rows[1][4] == 1234567.89 and rows[2][4] is None and rows[2][5] == 1234567.89


def test_the_export_equals_the_openpyxl_writer_on_this_database(tricky, tmp_path):
    """export_write renders rows in SQL on PostgreSQL and in Python on SQLite: same values."""
    written = exports.export_write(filters=_filters(), fmt="xlsx", path=str(tmp_path / "new.xlsx"))
    reference_xlsx(exports.export_rows(_filters()), tmp_path / "old.xlsx")
    assert written == 2 * len(TRICKY_MEMOS)
    assert _values(tmp_path / "new.xlsx") == _values(tmp_path / "old.xlsx")


def test_text_is_never_a_formula_and_a_carriage_return_survives(tricky, tmp_path):
    books.entry_post(
        kind="till_receipt",
        lines=[("mpesa_till", D("1")), ("unallocated_receipts", D("-1"))],
        memo="first\r\nsecond\rthird",
        posted_at=dt.datetime(2026, 3, 2, 12, 0, tzinfo=NAIROBI),
    )
    path = tmp_path / "new.xlsx"
    exports.export_write(filters=_filters(), fmt="xlsx", path=str(path))
    ws = openpyxl.load_workbook(path).active
    formula = ws.cell(row=2, column=10)
    assert formula.value == "=SUM(A1)" and formula.data_type == "s"
    assert ws.cell(row=ws.max_row, column=10).value == "first\r\nsecond\rthird"


def test_characters_xml_forbids_are_dropped(tmp_path):
    books.entry_post(
        kind="till_receipt",
        lines=[("mpesa_till", D("5")), ("unallocated_receipts", D("-5"))],
        memo="bell\x07 escape\x1b form feed\x0c end\ufffe",
        posted_at=dt.datetime(2026, 3, 2, 9, 0, tzinfo=NAIROBI),
    )
    path = tmp_path / "new.xlsx"
    exports.export_write(filters=_filters(), fmt="xlsx", path=str(path))
    with zipfile.ZipFile(path) as zf:
        ElementTree.fromstring(zf.read("xl/worksheets/sheet1.xml"))  # well-formed XML
    rows = _values(path)["Postings"]
    assert [row[9] for row in rows[1:]] == ["bell escape form feed end"] * 2


def test_amounts_dates_header_and_widths_keep_their_formats(tricky, tmp_path):
    path = tmp_path / "new.xlsx"
    exports.export_write(filters=_filters(), fmt="xlsx", path=str(path))
    ws = openpyxl.load_workbook(path)["Postings"]
    assert ws.freeze_panes == "A2"
    assert all(cell.font.bold for cell in ws[1]) and [c.value for c in ws[1]] == EXPORT_COLUMNS
    assert not ws["A2"].font.bold
    widths = [ws.column_dimensions[letter].width for letter in "ABCDEFGHIJ"]
    assert widths == list(exports.XLSX_WIDTHS)
    debit, credit = ws["E2"], ws["F3"]
    assert isinstance(debit.value, float) and debit.value == 1234567.89 and debit.number_format == "#,##0.00"
    assert credit.value == 1234567.89 and credit.number_format == "#,##0.00" and ws["F2"].value is None
    stamp = ws["B2"]
    assert stamp.is_date and stamp.number_format == "yyyy-mm-dd hh:mm:ss"
    assert stamp.value == dt.datetime(2026, 3, 2, 0, 0, 1, 250_000)  # Nairobi wall clock, no zone
    assert ws["B4"].value == dt.datetime(2026, 3, 2, 0, 1, 1, 250_000)


def test_a_full_sheet_carries_on_in_the_next_with_the_header(tricky, tmp_path, monkeypatch):
    whole = tmp_path / "whole.xlsx"
    _python_xlsx(whole)
    monkeypatch.setattr(exports, "SHEET_MAX_ROWS", 3)
    monkeypatch.setattr(exports, "COPY_STEP", 2)  # PostgreSQL: chunks that straddle the sheets
    path = tmp_path / "new.xlsx"
    done = []
    written = exports.export_write(filters=_filters(), fmt="xlsx", path=str(path), progress=done.append)
    sheets = _values(path)
    count = 2 * len(TRICKY_MEMOS)
    assert written == count and done[-1] == count and done == sorted(done)
    assert list(sheets) == ["Postings"] + [f"Postings {n}" for n in range(2, 8)]
    assert [len(rows) for rows in sheets.values()] == [4] * 6 + [3]
    assert all(list(rows[0]) == EXPORT_COLUMNS for rows in sheets.values())
    assert [row for rows in sheets.values() for row in rows[1:]] == _values(whole)["Postings"][1:]
    reference_xlsx(exports.export_rows(_filters()), tmp_path / "old.xlsx", sheet_max_rows=3)
    assert sheets == _values(tmp_path / "old.xlsx")
    book = openpyxl.load_workbook(path)
    assert all(ws.freeze_panes == "A2" and ws["A1"].font.bold for ws in book.worksheets)


def test_an_empty_range_is_a_sheet_with_only_the_header(tmp_path):
    path = tmp_path / "new.xlsx"
    done = []
    assert exports.export_write(filters=_filters(), fmt="xlsx", path=str(path), progress=done.append) == 0
    assert done == [0]
    assert _values(path) == {"Postings": [tuple(EXPORT_COLUMNS)]}


def test_the_package_has_its_parts_and_each_is_well_formed(tricky, tmp_path, monkeypatch):
    monkeypatch.setattr(exports, "SHEET_MAX_ROWS", 15)
    path = tmp_path / "new.xlsx"
    exports.export_write(filters=_filters(), fmt="xlsx", path=str(path))
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert names == {
            "[Content_Types].xml",
            "_rels/.rels",
            "xl/workbook.xml",
            "xl/_rels/workbook.xml.rels",
            "xl/styles.xml",
            "xl/worksheets/sheet1.xml",
            "xl/worksheets/sheet2.xml",
        }
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in zf.infolist())
        for name in names:
            ElementTree.fromstring(zf.read(name))
        assert b"/xl/worksheets/sheet2.xml" in zf.read("[Content_Types].xml")


@pytest.mark.postgres_only
def test_rows_rendered_by_postgresql_equal_rows_rendered_in_python(tricky, tmp_path):
    assert connection.vendor == "postgresql"
    sql_path, python_path = tmp_path / "sql.xlsx", tmp_path / "python.xlsx"
    assert exports.sql_xlsx(_filters(), str(sql_path)) == 2 * len(TRICKY_MEMOS)
    _python_xlsx(python_path)
    assert _values(sql_path) == _values(python_path)
    sql_ws, python_ws = (openpyxl.load_workbook(p)["Postings"] for p in (sql_path, python_path))
    for sql_row, python_row in zip(sql_ws.iter_rows(), python_ws.iter_rows(), strict=True):
        assert [(c.value, c.data_type, c.number_format) for c in sql_row] == [
            (c.value, c.data_type, c.number_format) for c in python_row
        ]
