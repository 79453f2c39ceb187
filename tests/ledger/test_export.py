"""Ledger exports: columns, filters, Nairobi days, CSV/XLSX, background jobs and their downloads."""

import csv
import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest
from django.core.management import call_command
from django.urls import reverse

from console.kernel.clock import NAIROBI
from console.models import AuditEvent
from ledger import books
from ledger.books import exports
from ledger.books.selectors import EXPORT_COLUMNS
from ledger.models import ExportJob, ExportStatus, OrderStatus
from tests.ledger.factories import OrderFactory

pytestmark = pytest.mark.django_db
D = Decimal

# 00:30 Nairobi on 2 March is 21:30 UTC on 1 March: it belongs to the Nairobi day of 2 March.
EARLY_2_MARCH = dt.datetime(2026, 3, 2, 0, 30, tzinfo=NAIROBI)
LATE_1_MARCH = dt.datetime(2026, 3, 1, 23, 59, 59, tzinfo=NAIROBI)


@pytest.fixture
def entries():
    order = OrderFactory(status=OrderStatus.PAID, gateway="payhero", price=D("150"), reference="TXN-AAAA2222")
    stk = books.entry_post(
        kind="stk_payment",
        lines=[("stk_clearing_payhero", D("150")), ("bundles_owed", D("-150"))],
        order=order,
        receipt_code="SAE3YULR0Y",
        channel="stk",
        memo="STK payment TXN-AAAA2222",
        posted_at=EARLY_2_MARCH,
    )
    till = books.entry_post(
        kind="till_receipt",
        lines=[("mpesa_till", D("99.50")), ("unallocated_receipts", D("-99.50"))],
        receipt_code="TK1ABC2DEF",
        channel="till",
        memo="Till receipt, with a comma",
        posted_at=LATE_1_MARCH,
    )
    return stk, till


def _filters(day_from="2026-03-02", day_to="2026-03-02", **kw):
    return exports.export_filters(
        date_from=dt.date.fromisoformat(day_from), date_to=dt.date.fromisoformat(day_to), **kw
    )


def _read_csv(path):
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "CSV starts with a UTF-8 BOM"
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def test_csv_has_the_header_and_one_row_per_posting_in_nairobi_time(entries, tmp_path):
    path = tmp_path / "out.csv"
    written = exports.export_write(filters=_filters(), fmt="csv", path=str(path))
    rows = _read_csv(path)
    assert written == 2
    assert rows[0] == EXPORT_COLUMNS
    assert rows[1] == [
        "JE-000001",
        "2026-03-02 00:30:00",
        "1020",
        "STK clearing - PayHero",
        "150.00",
        "",
        "TXN-AAAA2222",
        "SAE3YULR0Y",
        "stk",
        "STK payment TXN-AAAA2222",
    ]
    assert rows[2][2:6] == ["2020", "Bundles owed", "", "150.00"]


def test_date_range_is_inclusive_nairobi_days(entries, tmp_path):
    path = tmp_path / "out.csv"
    assert exports.export_write(filters=_filters("2026-03-01", "2026-03-01"), fmt="csv", path=str(path)) == 2
    rows = _read_csv(path)
    assert {r[0] for r in rows[1:]} == {"JE-000002"}
    assert rows[1][1] == "2026-03-01 23:59:59"
    assert exports.export_count(_filters("2026-03-01", "2026-03-02")) == 4
    assert exports.export_count(_filters("2026-03-03", "2026-03-31")) == 0


def test_account_and_channel_filters(entries):
    assert exports.export_count(_filters("2026-03-01", "2026-03-02", accounts=["mpesa_till"])) == 1
    assert exports.export_count(_filters("2026-03-01", "2026-03-02", channel="till")) == 2
    assert (
        exports.export_count(_filters("2026-03-01", "2026-03-02", channel="stk", accounts=["mpesa_till"]))
        == 0
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channel": "cash"}, "Unknown channel"),
        ({"accounts": ["nope"]}, "Unknown account"),
    ],
)
def test_bad_filters_are_refused_with_a_message(kwargs, message):
    with pytest.raises(exports.InvalidExport, match=message):
        _filters(**kwargs)
    with pytest.raises(exports.InvalidExport, match="after the end date"):
        _filters("2026-03-05", "2026-03-01")


def test_xlsx_opens_with_openpyxl_with_amounts_and_nairobi_times(entries, tmp_path):
    path = tmp_path / "out.xlsx"
    exports.export_write(filters=_filters("2026-03-01", "2026-03-02"), fmt="xlsx", path=str(path))
    ws = openpyxl.load_workbook(path, read_only=True)["Postings"]
    rows = list(ws.iter_rows(values_only=True))
    assert list(rows[0]) == EXPORT_COLUMNS
    assert len(rows) == 5
    till_row = next(r for r in rows[1:] if r[2] == "1010")
    assert till_row[1] == dt.datetime(2026, 3, 1, 23, 59, 59)
    assert Decimal(str(till_row[4])) == D("99.50") and till_row[5] is None


def test_xlsx_has_a_frozen_bold_header_column_widths_and_money_format(entries, tmp_path, monkeypatch):
    monkeypatch.setattr(exports, "SHEET_MAX_ROWS", 3)  # the second sheet gets the same layout
    path = tmp_path / "out.xlsx"
    exports.export_write(filters=_filters("2026-03-01", "2026-03-02"), fmt="xlsx", path=str(path))
    book = openpyxl.load_workbook(path)
    for ws in book.worksheets:
        assert ws.freeze_panes == "A2"
        assert ws["A1"].font.bold and ws["A1"].value == EXPORT_COLUMNS[0]
        widths = {col: ws.column_dimensions[col].width for col in "ABDEFJ"}
        assert widths["B"] >= 19 and widths["D"] >= 20 and widths["J"] >= 30 and widths["E"] >= 12
        amounts = [
            c for row in ws.iter_rows(min_row=2, min_col=5, max_col=6) for c in row if c.value is not None
        ]
        assert amounts and all(c.number_format == "#,##0.00" for c in amounts)
        assert ws.cell(row=2, column=2).number_format == "yyyy-mm-dd hh:mm:ss"


# --- background jobs --------------------------------------------------------------------------
def test_export_job_writes_its_file_and_reports_progress(entries, finance, monkeypatch):
    monkeypatch.setattr(exports, "CHUNK", 1)  # progress after every row (csv module writer)
    monkeypatch.setattr(exports, "COPY_STEP", 1)  # after every entry (PostgreSQL COPY)
    seen = []
    real_update = ExportJob.objects.filter

    def spy_filter(*args, **kwargs):
        qs = real_update(*args, **kwargs)
        original = qs.update

        def update(**values):
            if "rows_done" in values:
                seen.append(values["rows_done"])
            return original(**values)

        qs.update = update
        return qs

    monkeypatch.setattr(ExportJob.objects, "filter", spy_filter)
    job = ExportJob.objects.create(
        created_by=finance, format="csv", filters=_filters("2026-03-01", "2026-03-02")
    )
    exports.run_export_job(job.pk)
    job.refresh_from_db()
    assert job.status == ExportStatus.DONE
    assert (job.rows_done, job.rows_total, job.progress_percent) == (4, 4, 100)
    # Progress is reported while the file is written, not only at the end: per row from the
    # csv module (SQLite), per entry's two postings from COPY (PostgreSQL).
    assert seen[0] == 0 and seen[-1] == 4 and seen == sorted(seen)
    assert sorted(set(seen[1:])) in ([1, 2, 3, 4], [2, 4])
    with job.file.open("rb") as fh:
        assert fh.read().decode("utf-8-sig").count("\n") == 5


def test_export_job_failure_is_recorded_not_raised(finance):
    job = ExportJob.objects.create(created_by=finance, format="pdf", filters=_filters())
    exports.run_export_job(job.pk)
    job.refresh_from_db()
    assert job.status == ExportStatus.FAILED and "CSV or XLSX" in job.error


def test_large_export_from_the_admin_becomes_a_job_recording_who_and_what(
    entries, finance, client_for, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(exports, "DIRECT_MAX_ROWS", 1)
    client = client_for(finance)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:ledger_exportjob_new_export"),
            {"date_from": "2026-03-01", "date_to": "2026-03-02", "format": "xlsx", "channel": "till"},
        )
    assert response.status_code == 302
    job = ExportJob.objects.get()
    assert job.created_by == finance
    assert job.filters == {
        "date_from": "2026-03-01",
        "date_to": "2026-03-02",
        "accounts": [],
        "channel": "till",
    }
    assert job.status == ExportStatus.DONE and job.rows_done == 2  # Q_SYNC ran the task inline
    assert AuditEvent.objects.filter(action="ledger.export_queued", object_id=str(job.pk)).exists()

    listing = client.get(reverse("admin:ledger_exportjob_changelist")).content.decode()
    assert "100%" in listing and reverse("admin:ledger_exportjob_download", args=[job.pk]) in listing

    download = client.get(reverse("admin:ledger_exportjob_download", args=[job.pk]))
    assert download.status_code == 200
    assert "attachment" in download["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(b"".join(download.streaming_content)), read_only=True)
    assert len(list(book["Postings"].iter_rows())) == 3


def test_download_needs_the_export_permission(entries, finance, agent, superuser, client_for):
    job = ExportJob.objects.create(created_by=finance, format="csv", filters=_filters())
    exports.run_export_job(job.pk)
    url = reverse("admin:ledger_exportjob_download", args=[job.pk])
    assert client_for(agent).get(url).status_code == 403
    assert client_for(superuser).get(url).status_code == 200


def test_small_export_downloads_at_once_and_is_recorded(entries, finance, client_for):
    response = client_for(finance).post(
        reverse("admin:ledger_exportjob_new_export"),
        {"date_from": "2026-03-02", "date_to": "2026-03-02", "format": "csv", "accounts": ["bundles_owed"]},
    )
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = body.strip().splitlines()
    assert lines[0].startswith("Entry number,") and len(lines) == 2 and "Bundles owed" in lines[1]
    job = ExportJob.objects.get()
    assert job.created_by == finance and job.filters["accounts"] == ["bundles_owed"] and not job.file
    assert AuditEvent.objects.filter(action="ledger.export_downloaded").exists()


def test_export_form_reports_bad_dates_without_exporting(finance, client_for):
    response = client_for(finance).post(
        reverse("admin:ledger_exportjob_new_export"),
        {"date_from": "2026-03-05", "date_to": "2026-03-01", "format": "csv"},
    )
    assert response.status_code == 200 and "after the end date" in response.content.decode()
    assert not ExportJob.objects.exists()


def test_agent_cannot_export(agent, client_for):
    url = reverse("admin:ledger_exportjob_new_export")
    assert (
        client_for(agent).post(url, {"date_from": "2026-03-01", "date_to": "2026-03-01"}).status_code == 403
    )


# --- the command ------------------------------------------------------------------------------
def test_export_ledger_command_writes_the_same_file(entries, tmp_path):
    path = tmp_path / "cmd.csv"
    out = io.StringIO()
    call_command("export_ledger", str(path), "--from", "2026-03-01", "--to", "2026-03-02", stdout=out)
    assert "Wrote 4 postings" in out.getvalue()
    assert len(_read_csv(path)) == 5


def test_export_ledger_command_rejects_a_bad_date(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not a date"):
        call_command("export_ledger", str(tmp_path / "x.csv"), "--from", "2026-13-01", "--to", "2026-03-02")


def test_xlsx_carries_on_in_a_new_sheet_when_one_is_full(entries, tmp_path, monkeypatch):
    monkeypatch.setattr(exports, "SHEET_MAX_ROWS", 3)
    path = tmp_path / "out.xlsx"
    exports.export_write(filters=_filters("2026-03-01", "2026-03-02"), fmt="xlsx", path=str(path))
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == ["Postings", "Postings 2"]
    sheets = [list(book[name].iter_rows(values_only=True)) for name in book.sheetnames]
    assert [len(rows) for rows in sheets] == [4, 2]
    assert all(list(rows[0]) == EXPORT_COLUMNS for rows in sheets)


def test_too_large_xlsx_export_is_refused_with_a_message(entries, finance, client_for, monkeypatch):
    monkeypatch.setattr(exports, "DIRECT_MAX_ROWS", 1)
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 3)
    response = client_for(finance).post(
        reverse("admin:ledger_exportjob_new_export"),
        {"date_from": "2026-03-01", "date_to": "2026-03-02", "format": "xlsx"},
    )
    assert response.status_code == 200
    assert "too many for an XLSX export" in response.content.decode()
    assert not ExportJob.objects.exists()
