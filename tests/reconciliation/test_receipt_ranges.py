"""Impossible receipts are refused: statement rows and pasted till SMS out of time or money range.

A statement with any such row is listed row by row in the preview and saves nothing (no receipt,
no journal entry, no import); the same file through ``import_statement`` exits non-zero naming the
rows. A paste holding any such SMS records nothing. Only the receipt's amount and date are checked:
a balance column may hold any number.
"""

import datetime as dt
import io
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from openpyxl import Workbook

from ledger.books import books_check
from ledger.models import JournalEntry
from reconciliation.models import StatementImport, TillReceipt
from reconciliation.services import receipts as svc
from reconciliation.services.errors import ImportRefused

from .chatgen import STATEMENT_COLUMNS

pytestmark = pytest.mark.django_db
NAIROBI = ZoneInfo("Africa/Nairobi")
HEADER = STATEMENT_COLUMNS
GOOD_AT = dt.datetime(2026, 3, 10, 9, 15, 40)
BAD_ROW = 3  # header is row 1, the good row 2


def _row(code, completed, paid_in, *, withdrawn="", balance="400.00", details=None):
    details = details or "Merchant Payment from 0712***678 - JOHN KAMAU"
    return [code, completed, "", details, "Completed", paid_in, withdrawn, balance, "TRUE",
            "Customer Merchant Payment", "6944804 - TILLBOOK DATA", "", ""]  # fmt: skip


def _csv_cell(value):
    if isinstance(value, dt.datetime):
        return f"{value.day:02d}-{value.month:02d}-{value.year:04d} {value:%H:%M:%S}"
    text = str(value)
    return f'"{text}"' if "," in text else text


def statement(kind, rows):
    """A statement file (name, bytes) as the Org portal exports it: CSV text or XLSX typed cells."""
    if kind == "csv":
        lines = [",".join(HEADER)] + [",".join(_csv_cell(c) for c in row) for row in rows]
        return "statement.csv", ("\n".join(lines) + "\n").encode()
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return "statement.xlsx", out.getvalue()


def _future():
    return (timezone.now() + dt.timedelta(days=1)).astimezone(NAIROBI).replace(tzinfo=None, microsecond=0)


# (case, completion time, paid in as CSV text, paid in as an XLSX cell, what the reason says)
BAD_CASES = [
    ("year_0001", lambda: dt.datetime(1, 1, 1, 10, 0), "150.00", 150, "before the till"),
    ("future", _future, "150.00", 150, "in the future"),
    ("before_start", lambda: dt.datetime(2019, 12, 31, 23, 59), "150.00", 150, "before the till"),
    ("huge", lambda: GOOD_AT, "99,999,999,999,999.00", 99999999999999, "maximum"),
    ("zero", lambda: GOOD_AT, "0.00", 0, "more than zero"),
    ("negative", lambda: GOOD_AT, "-150.00", -150, "not a positive amount"),
    ("cent_fraction", lambda: GOOD_AT, "150.005", 150.005, "fractions of a cent"),
]


def bad_statement(kind, case):
    _, completed, csv_paid, xlsx_paid, reason = next(c for c in BAD_CASES if c[0] == case)
    paid_in = csv_paid if kind == "csv" else xlsx_paid
    good = _row("UCA2MX9P3F", GOOD_AT, "250.00" if kind == "csv" else 250)
    bad = _row("UCA3WQ6N7H", completed(), paid_in)
    name, data = statement(kind, [good, bad])
    return name, data, reason


def nothing_saved():
    return not TillReceipt.objects.exists() and not JournalEntry.objects.exists()


CASES = [(kind, case[0]) for kind in ("csv", "xlsx") for case in BAD_CASES]


@pytest.mark.parametrize(("kind", "case"), CASES)
def test_preview_lists_the_impossible_row_with_its_number_and_reason(kind, case):
    name, data, reason = bad_statement(kind, case)
    preview = svc.statement_preview(data=data, filename=name)
    assert [e["row"] for e in preview["errors"]] == [BAD_ROW]
    assert reason in preview["errors"][0]["message"]
    assert nothing_saved() and not StatementImport.objects.exists()


@pytest.mark.parametrize(("kind", "case"), CASES)
def test_importing_a_statement_with_an_impossible_row_saves_nothing(kind, case):
    name, data, reason = bad_statement(kind, case)
    with pytest.raises(ImportRefused, match=f"row {BAD_ROW}") as refused:
        svc.statement_import_create(data=data, filename=name)
    assert reason in refused.value.message
    assert nothing_saved() and not StatementImport.objects.exists()


@pytest.mark.parametrize(("kind", "case"), CASES)
def test_import_statement_command_exits_non_zero_naming_the_row(kind, case, tmp_path, capsys):
    name, data, reason = bad_statement(kind, case)
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(CommandError, match="bad row"):
        call_command("import_statement", str(path))
    err = capsys.readouterr().err
    assert f"row {BAD_ROW}" in err and reason in err
    assert nothing_saved() and not StatementImport.objects.exists()


def test_statement_upload_page_lists_the_impossible_row(client_for, finance):
    name, data, reason = bad_statement("csv", "year_0001")
    response = client_for(finance).post(
        reverse("admin:reconciliation_statementimport_upload_statement"),
        {"file": SimpleUploadedFile(name, data)},
    )
    body = response.content.decode()
    assert response.status_code == 200 and "Rows with errors (nothing was saved)" in body
    assert reason in body and "Completion Time" in body
    assert nothing_saved() and not StatementImport.objects.exists()


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_huge_balance_and_withdrawal_figures_are_not_receipts_and_do_not_crash(kind):
    huge = "99,999,999,999,999.00" if kind == "csv" else 10**30
    rows = [
        _row("UCA2MX9P3F", GOOD_AT, "250.00" if kind == "csv" else 250, balance=huge),
        _row("UCA5HV4C6M", GOOD_AT, "", withdrawn=huge, balance=huge, details="Business Buy Goods to 300300"),
    ]
    name, data = statement(kind, rows)
    imp = svc.statement_import_create(data=data, filename=name)
    svc.statement_import_start(import_id=imp.pk)
    assert list(TillReceipt.objects.values_list("code", "amount")) == [("UCA2MX9P3F", Decimal("250.00"))]
    assert books_check() == []


def test_a_good_statement_inside_the_ranges_still_imports():
    name, data = statement("csv", [_row("UCA2MX9P3F", GOOD_AT, "250.00")])
    svc.statement_import_start(import_id=svc.statement_import_create(data=data, filename=name).pk)
    assert TillReceipt.objects.get().amount == Decimal("250.00")


# --- pasted till SMS --------------------------------------------------------------------------


def till_sms(code, when: dt.datetime, amount: str) -> str:
    return (
        f"{code} Confirmed.on {when.day}/{when.month}/{when.year % 100:02d} at {when:%I:%M %p}"
        f"Ksh{amount} received from 254721863742 MERCY WAITHAKA. New Account balance is Ksh440.00. "
        "Transaction cost, Ksh0.00."
    )


GOOD_SMS = till_sms("UCA1S35S7Z", dt.datetime(2026, 3, 10, 15, 57), "150.00")
BAD_SMS = [
    ("future", lambda: till_sms("UCA9S2XEPH", _future() + dt.timedelta(days=1), "150.00"), "in the future"),
    ("before_start", lambda: till_sms("UCA9S2XEPH", dt.datetime(2019, 12, 31, 9, 0), "150.00"), "before"),
    ("huge", lambda: till_sms("UCA9S2XEPH", GOOD_AT, "99,999,999,999,999.00"), "maximum"),
    ("zero", lambda: till_sms("UCA9S2XEPH", GOOD_AT, "0.00"), "more than zero"),
]


@pytest.mark.parametrize(("case", "text", "reason"), BAD_SMS, ids=[c[0] for c in BAD_SMS])
def test_pasted_till_sms_out_of_range_is_refused_and_nothing_is_saved(case, text, reason):
    with pytest.raises(ImportRefused) as refused:
        svc.till_sms_import(text=GOOD_SMS + "\n" + text())
    assert "UCA9S2XEPH" in refused.value.message and reason in refused.value.message
    assert nothing_saved()


def test_paste_till_sms_page_shows_the_refusal_and_saves_nothing(client_for, finance):
    text = GOOD_SMS + "\n" + till_sms("UCA9S2XEPH", GOOD_AT, "99,999,999,999,999.00")
    response = client_for(finance).post(
        reverse("admin:reconciliation_tillreceipt_paste_till_sms"), {"text": text}
    )
    body = response.content.decode()
    assert response.status_code == 200 and "UCA9S2XEPH" in body and "maximum" in body
    assert nothing_saved()
