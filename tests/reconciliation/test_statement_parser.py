"""reconciliation.parsers.statement: M-PESA Org portal statement exports (formats doc §4.1)."""

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook

from reconciliation.parsers.statement import (
    StatementFormatError,
    parse_amount,
    parse_statement,
    parse_till_sms_receipts,
)

from .chatgen import STATEMENT_COLUMNS

NAIROBI = ZoneInfo("Africa/Nairobi")
DATA = Path(__file__).parent.parent / "data" / "statements"
HEADER = STATEMENT_COLUMNS


def load(name):
    return parse_statement((DATA / name).read_bytes(), name)


def at(*args):
    return dt.datetime(*args, tzinfo=NAIROBI)


def by_row(parse):
    return {row.row_number: row for row in parse.rows}


def test_csv_with_preamble_and_every_disposition():
    parse = load("preamble_ddmmyyyy.csv")
    assert parse.header_row == 5 and parse.errors == []
    rows = by_row(parse)
    paid = rows[6]
    assert (paid.receipt, paid.completed_at, paid.paid_in, paid.withdrawn, paid.balance) == (
        "SAE3YULR0Y",
        at(2024, 1, 14, 10, 35, 43),
        Decimal("150.00"),
        Decimal("0.00"),
        Decimal("1350.00"),
    )
    assert (paid.payer_masked, paid.payer_name, paid.account) == ("2547****0111", "MARY ATIENO", "0712345678")
    assert (paid.disposition, paid.skip_reason, paid.reason_type) == ("receipt", None, "Pay Bill Online")
    assert paid.other_party == "2547****0111 - MARY ATIENO"
    assert paid.initiated_at == at(2024, 1, 14, 10, 35, 40)
    assert (rows[7].disposition, rows[7].skip_reason) == ("skipped", "charge")
    assert rows[8].paid_in == Decimal("1200.00") and rows[8].completed_at == at(2024, 1, 14, 11, 0)
    assert (rows[8].payer_masked, rows[8].payer_name) == ("254722000111", "JOHN KAMAU")
    assert rows[9].skip_reason == "not_completed"
    assert rows[10].skip_reason == "withdrawal"
    assert rows[11].skip_reason == "duplicate_in_file"
    assert rows[12].skip_reason == "zero_amount"
    assert [r.receipt for r in parse.receipts] == ["SAE3YULR0Y", "SAE4ABC12D"]


def test_csv_iso_dates_and_negative_charge():
    parse = load("iso_dates.csv")
    assert parse.header_row == 1 and parse.errors == []
    first, online, charge = parse.rows
    assert first.completed_at == at(2025, 9, 6, 18, 26, 32)
    assert (first.payer_masked, first.payer_name) == ("0746***921", "isaac alemu aleper")
    assert (online.payer_masked, online.payer_name) == ("254717***838", "JANE WANJIRU")
    assert online.disposition == "receipt"
    assert charge.paid_in == Decimal("-13.75") and charge.skip_reason == "charge"


def test_xlsx_with_preamble_datetime_cells_and_numbers():
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["TILLBOOK DATA LTD"])
    sheet.append(["Shortcode", 4123456])
    sheet.append([])
    sheet.append(HEADER)
    sheet.append(
        [
            "SAE3YULR0Y",
            dt.datetime(2024, 1, 14, 10, 35, 43),
            dt.datetime(2024, 1, 14, 10, 35, 40),
            "Pay Bill from 2547****0111 - MARY ATIENO Acc. 2GB",
            "Completed",
            150,
            None,
            1350.5,
            True,
            "Pay Bill Online",
            "2547****0111 - MARY ATIENO",
            None,
            "2GB",
        ]
    )
    sheet.append(
        [
            "SAE3YULR0Y",
            "14-01-2024 10:35:43",
            None,
            "Pay Bill Charge",
            "Completed",
            None,
            2.5,
            1348,
            True,
            "",
            "",
            "",
            "",
        ]
    )
    sheet.append(
        ["TCG3YADR1X", "2025-03-16 19:51:00", None, "Merchant Payment", "Completed", "2,045.00", "", "", ""]
    )
    buffer = io.BytesIO()
    workbook.save(buffer)
    parse = parse_statement(buffer.getvalue(), "statement.xlsx")
    assert parse.header_row == 4 and parse.errors == []
    paid, charge, till = parse.rows
    assert paid.row_number == 5 and paid.completed_at == at(2024, 1, 14, 10, 35, 43)
    assert paid.paid_in == Decimal("150.00") and paid.balance == Decimal("1350.50")
    assert paid.disposition == "receipt"
    assert (charge.withdrawn, charge.skip_reason) == (Decimal("2.50"), "charge")
    assert till.paid_in == Decimal("2045.00") and till.completed_at == at(2025, 3, 16, 19, 51)
    assert till.balance is None


def test_semicolon_csv_and_slash_dates():
    text = ";".join(HEADER[:7]) + "\nSAE3YULR0Y;14/01/2024 10:35;;Pay Bill;Completed;150.00;\n"
    (row,) = parse_statement(text.encode(), "s.csv").rows
    assert row.completed_at == at(2024, 1, 14, 10, 35) and row.paid_in == Decimal("150.00")


def test_html_table_saved_as_xls():
    cells = "".join(f"<th>{h}</th>" for h in HEADER[:7])
    row = "".join(
        f"<td>{v}</td>"
        for v in ["SAE3YULR0Y", "14-01-2024 10:35:43", "", "Pay Bill", "Completed", "1,150.00", ""]
    )
    html = f"<html><body><table><tr>{cells}</tr><tr>{row}</tr></table></body></html>"
    (parsed,) = parse_statement(html.encode(), "statement.xls").rows
    assert parsed.paid_in == Decimal("1150.00")


def test_wrong_header_names_required_columns():
    with pytest.raises(StatementFormatError, match="Receipt No.*Completion Time.*Withdrawn"):
        load("wrong_header.csv")


def test_missing_columns_are_named():
    with pytest.raises(StatementFormatError) as info:
        load("missing_columns.csv")
    assert "Transaction Status" in str(info.value) and "Withdrawn" in str(info.value)
    assert "Details" not in str(info.value)


@pytest.mark.parametrize(
    ("data", "name"), [(b"", "empty.csv"), (b"  \n\n", "blank.csv"), (b",,,\n,,\n", "c.csv")]
)
def test_empty_files(data, name):
    with pytest.raises(StatementFormatError, match="empty"):
        parse_statement(data, name)


def test_empty_file_on_disk():
    with pytest.raises(StatementFormatError, match="empty"):
        load("empty.csv")


def test_old_binary_xls_and_corrupt_xlsx():
    with pytest.raises(StatementFormatError, match=r"\.xlsx or CSV"):
        parse_statement(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old.xls")
    with pytest.raises(StatementFormatError, match="could not be opened"):
        parse_statement(b"PK\x03\x04broken", "broken.xlsx")


def test_bad_amount_is_a_row_error():
    parse = load("bad_amount.csv")
    (error,) = parse.errors
    assert (error.row_number, error.column) == (2, "Paid In")
    assert "15O.00" in error.message
    assert [row.receipt for row in parse.rows] == ["SAE4ABC12D"]


def test_bad_dates_are_row_errors():
    parse = load("bad_date.csv")
    assert [(e.row_number, e.column) for e in parse.errors] == [
        (2, "Completion Time"),
        (3, "Completion Time"),
    ]
    assert "yesterday" in parse.errors[1].message
    assert parse.rows == []


def test_bad_receipt_and_blank_receipt_rows():
    text = ",".join(HEADER[:7]) + "\nNOT A CODE!,14-01-2024 10:35,,x,Completed,1.00,\n,,,Total,,150.00,\n"
    parse = parse_statement(text.encode(), "s.csv")
    assert [(e.row_number, e.column) for e in parse.errors] == [(2, "Receipt No.")]
    assert parse.warnings == ["Row 3: no receipt number; row ignored."]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1,200.00", "1200.00"),
        ("", "0.00"),
        (None, "0.00"),
        ("-13.75", "-13.75"),
        ("(13.75)", "-13.75"),
        ("KSH 1,000", "1000"),
        (150, "150.00"),
        (0.1, "0.10"),
    ],
)
def test_parse_amount(raw, expected):
    assert parse_amount(raw) == Decimal(expected)


@pytest.mark.parametrize("raw", ["abc", "1.2.3", "15O", True])
def test_parse_amount_rejects(raw):
    with pytest.raises(ValueError, match="not an amount"):
        parse_amount(raw)


def test_parse_till_sms_receipts():
    text = (
        "QAI1S35S7Z Confirmed.on 18/1/22 at 3:57 PMKsh40.00 received from 254721863742 "
        "MERCY MUGOIRI WAITHAKA. "
        "New Account balance is Ksh440.00. Transaction cost, Ksh0.00.\n"
        "TCG3YADR1X Confirmed. Ksh2,045.00 paid to POWERMART SUPERMARKET. on 16/3/25 at 7:51 PM.New M-PESA "
        "balance is Ksh1,324.13.\n"
        "QAI9S2XEPH Confirmed.on 18/1/22 at 3:54 PMKsh200.00 received from 254797847747 james kamau. "
        "New Account balance is Ksh400.00. Transaction cost, Ksh0.00."
    )
    receipts = parse_till_sms_receipts(text)
    assert [(r.code, r.amount, r.phone) for r in receipts] == [
        ("QAI1S35S7Z", Decimal("40.00"), "254721863742"),
        ("QAI9S2XEPH", Decimal("200.00"), "254797847747"),
    ]
