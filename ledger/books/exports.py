"""Ledger exports: postings for a Nairobi date range as CSV (UTF-8 with BOM) or XLSX.

Rows stream from the database in chunks (values_list + iterator, a server-side cursor on
PostgreSQL) into a file, so memory stays flat however many postings there are. Small exports
are downloaded at once; large ones run as an ExportJob in a django-q2 worker.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.files import File
from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    DateTimeField,
    DecimalField,
    DurationField,
    F,
    Func,
    IntegerField,
    Max,
    Min,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Concat, NullIf
from django.utils import timezone

from console.kernel.audit import AuditAction, audit_record
from console.kernel.clock import NAIROBI, day_start
from console.kernel.exceptions import DomainError
from console.kernel.money import plain
from console.kernel.uploads import FORMULA_STARTS, spreadsheet_safe
from ledger.books import xlsx
from ledger.books.selectors import EXPORT_COLUMNS, postings_for_export
from ledger.models import Account, ExportJob, ExportStatus

logger = logging.getLogger(__name__)

CHUNK = 2000
FORMATS = ("csv", "xlsx")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# Above this many postings an export runs in the background instead of in the request.
DIRECT_MAX_ROWS = getattr(settings, "EXPORT_DIRECT_MAX_ROWS", 20_000)
# The streaming writer (ledger.books.xlsx, rows rendered by PostgreSQL) writes ~40,000 rows/s:
# 1M postings in ~25 s, 2M (two sheets) in under a minute, well inside the worker's timeout
# (Q_CLUSTER timeout 300 s). Bigger ledgers export as CSV.
XLSX_MAX_ROWS = getattr(settings, "EXPORT_XLSX_MAX_ROWS", 2_000_000)
# Column widths (characters) for EXPORT_COLUMNS, and amounts with thousands separators.
XLSX_WIDTHS = (12, 20, 10, 26, 14, 14, 14, 14, 9, 40)
XLSX_MONEY = "#,##0.00"
# An Excel sheet holds 1,048,576 rows; the header takes one.
SHEET_MAX_ROWS = 1_048_575

DATE_RANGE_BACKWARDS = "The start date is after the end date."
UNKNOWN_FORMAT = "Choose CSV or XLSX."
UNKNOWN_CHANNEL = "Unknown channel {channel!r}."
XLSX_TOO_BIG = (
    "{count:,} postings is too many for an XLSX export (at most {limit:,}): choose CSV or a shorter range."
)


class InvalidExport(DomainError):
    """These export filters make no sense."""


# ---------------------------------------------------------------------------------------------
# Filters: one dict, stored on the ExportJob as JSON, read back the same way everywhere
# ---------------------------------------------------------------------------------------------
def export_filters(
    *, date_from: dt.date, date_to: dt.date, accounts: Iterable[str] = (), channel: str = ""
) -> dict:
    """Validate and normalise export filters into the JSON stored on an ExportJob."""
    if date_from > date_to:
        raise InvalidExport(DATE_RANGE_BACKWARDS)
    if channel and channel not in ("stk", "till"):
        raise InvalidExport(UNKNOWN_CHANNEL.format(channel=channel))
    keys = sorted(set(accounts))
    if keys:
        known = set(Account.objects.filter(key__in=keys).values_list("key", flat=True))
        if missing := set(keys) - known:
            raise InvalidExport(f"Unknown account(s): {', '.join(sorted(missing))}.")
    return {
        "date_from": date_from.isoformat(),
        "date_to": date_to.isoformat(),
        "accounts": keys,
        "channel": channel,
    }


def _queryset(filters: dict):
    return postings_for_export(
        date_from=dt.date.fromisoformat(filters["date_from"]),
        date_to=dt.date.fromisoformat(filters["date_to"]),
        account_keys=filters.get("accounts") or None,
        channel=filters.get("channel") or "",
    )


def export_count(filters: dict) -> int:
    return _queryset(filters).count()


def export_filename(filters: dict, fmt: str) -> str:
    return f"ledger_{filters['date_from']}_{filters['date_to']}.{fmt}"


# ---------------------------------------------------------------------------------------------
# Rows and writers
# ---------------------------------------------------------------------------------------------
def export_rows(filters: dict) -> Iterator[tuple]:
    """(number, Nairobi datetime, code, name, debit, credit, order ref, receipt, channel, memo)."""
    for number, posted_at, code, name, amount, ref, receipt, channel, memo in _queryset(filters).iterator(
        chunk_size=CHUNK
    ):
        yield (
            number,
            posted_at.astimezone(NAIROBI),
            code,
            name,
            amount if amount > 0 else None,
            -amount if amount < 0 else None,
            ref or "",
            receipt or "",
            channel or "",
            memo or "",
        )


Progress = Callable[[int], None]


def _chunked_progress(rows: Iterable[tuple], progress: Progress | None) -> Iterator[tuple]:
    done = 0
    for row in rows:
        yield row
        done += 1
        if progress and done % CHUNK == 0:
            progress(done)
    if progress:
        progress(done)


def write_csv(rows: Iterable[tuple], fh) -> None:
    """Write rows to a text file opened with newline="": BOM, header, then one line per posting."""
    fh.write("\ufeff")  # Excel reads UTF-8 only with the BOM
    writer = csv.writer(fh)
    writer.writerow(EXPORT_COLUMNS)
    for number, when, code, name, debit, credit, ref, receipt, channel, memo in rows:
        writer.writerow(
            [
                number,
                when.strftime("%Y-%m-%d %H:%M:%S"),
                spreadsheet_safe(code),
                spreadsheet_safe(name),
                plain(debit) if debit is not None else "",
                plain(credit) if credit is not None else "",
                spreadsheet_safe(ref),
                spreadsheet_safe(receipt),
                spreadsheet_safe(channel),
                spreadsheet_safe(memo),
            ]
        )


def _row_xml(row: tuple) -> str:
    number, when, code, name, debit, credit, ref, receipt, channel, memo = row
    return (
        "<row>"
        + xlsx.text_cell(number)
        + xlsx.datetime_cell(when)
        + xlsx.text_cell(code)
        + xlsx.text_cell(name)
        + xlsx.money_cell(debit)
        + xlsx.money_cell(credit)
        + xlsx.text_cell(ref)
        + xlsx.text_cell(receipt)
        + xlsx.text_cell(channel)
        + xlsx.text_cell(memo)
        + "</row>"
    )


def _xlsx_stream(path: str) -> xlsx.XlsxStream:
    return xlsx.XlsxStream(
        path, header=EXPORT_COLUMNS, widths=XLSX_WIDTHS, title="Postings", sheet_max_rows=SHEET_MAX_ROWS
    )


def write_xlsx(rows: Iterable[tuple], path: str) -> None:
    """Write rows to an XLSX file, one XML string per row (ledger.books.xlsx): constant memory.

    Text is always a string cell, never a formula; amounts are numbers shown as #,##0.00; the
    time is Nairobi wall-clock (Excel has no time zones); a full sheet carries on in the next.
    """
    with _xlsx_stream(path) as stream:
        xlsx.write_rows(stream, (_row_xml(row) for row in rows), CHUNK)


def export_write(*, filters: dict, fmt: str, path: str, progress: Progress | None = None) -> int:
    """Write the export to `path`; returns the number of postings written."""
    if fmt not in FORMATS:
        raise InvalidExport(UNKNOWN_FORMAT)
    counted = []

    def _progress(done):
        counted[:] = [done]
        if progress:
            progress(done)

    if connection.vendor == "postgresql":
        write = copy_csv if fmt == "csv" else sql_xlsx
        return write(filters, path, progress=progress)
    rows = _chunked_progress(export_rows(filters), _progress)
    if fmt == "csv":
        with open(path, "w", encoding="utf-8", newline="") as fh:
            write_csv(rows, fh)
    else:
        write_xlsx(rows, path)
    return counted[0] if counted else 0


# ---------------------------------------------------------------------------------------------
# CSV straight from PostgreSQL
# ---------------------------------------------------------------------------------------------
# The same cells write_csv makes, computed by the database, so `COPY … TO STDOUT` streams the file
# with no Python object per row. Empty text is NULL so COPY writes an empty cell, as the csv module
# does, not "". Per-row SQL is what costs at 1M postings (a regex, to_char() and a named time zone
# each cost more than the join itself), so the cells use the cheap equivalents: the first
# character's code instead of a regex for "starts like a formula", and the Nairobi time as the text
# of a whole-second timestamp at a fixed UTC offset where the zone has one.
COPY_STEP = 50_000  # journal entries per COPY (about 100,000 postings): a progress step
_FORMULA_CODES = tuple(ord(char) for char in FORMULA_STARTS)
_NUMBER_SQL = "^[-+]?[0-9]+([.,][0-9]+)*([.][0-9]+)?$"
# Kenya has kept UTC+3 since 1960 (console.kernel.clock): from then on, a fixed offset is the zone.
_FIXED_OFFSET_SINCE = dt.date(1961, 1, 1)


def _nairobi_offset(filters: dict) -> dt.timedelta | None:
    """Nairobi's UTC offset over the whole export range, or None where it may change."""
    date_from = dt.date.fromisoformat(filters["date_from"])
    date_to = dt.date.fromisoformat(filters["date_to"])
    if date_from < _FIXED_OFFSET_SINCE:
        return None
    offsets = {day_start(day).utcoffset() for day in (date_from, date_to + dt.timedelta(days=1))}
    return offsets.pop() if len(offsets) == 1 else None


def _iso_datestyle() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SHOW DateStyle")
        return cursor.fetchone()[0].upper().startswith("ISO")


def _stamp_sql(filters: dict):
    """The entry's Nairobi wall-clock time as 'YYYY-MM-DD HH:MM:SS' text, cheaply where it can be."""
    offset = _nairobi_offset(filters)
    if offset is None or not _iso_datestyle():
        posted = Func(
            Value("Africa/Nairobi"), F("entry__posted_at"), function="timezone", output_field=DateTimeField()
        )
        return Func(posted, Value("YYYY-MM-DD HH24:MI:SS"), function="to_char", output_field=CharField())
    # timezone(interval, timestamptz) shifts by the offset (no zone lookup per row); date_trunc drops
    # the fraction as to_char's SS does, and an ISO timestamp's text is then exactly that format.
    posted = Func(
        Value(offset, output_field=DurationField()),
        F("entry__posted_at"),
        function="timezone",
        output_field=DateTimeField(),
    )
    second = Func(Value("second"), posted, function="date_trunc", output_field=DateTimeField())
    return Cast(second, CharField())


def _copy_queryset(filters: dict):
    rows = _queryset(filters).values_list()  # keeps filters and journal order, no columns yet
    cells = {}
    for index, field in enumerate(
        (
            "account__code",
            "account__name",
            "entry__order__reference",
            "entry__receipt_code",
            "entry__channel",
            "entry__memo",
        )
    ):
        alias, first = f"_text{index}", f"_first{index}"
        rows = rows.alias(**{alias: Coalesce(F(field), Value(""), output_field=CharField())})
        rows = rows.alias(**{first: Func(F(alias), function="ascii", output_field=IntegerField())})
        cells[f"c{index}"] = NullIf(
            Case(
                When(
                    Q(**{f"{first}__in": _FORMULA_CODES}) & ~Q(**{f"{alias}__regex": _NUMBER_SQL}),
                    then=Concat(Value("'"), F(alias)),
                ),
                default=F(alias),
                output_field=CharField(),
            ),
            Value(""),
        )
    return rows.values_list(
        "entry__number",
        _stamp_sql(filters),
        cells["c0"],
        cells["c1"],
        Case(When(amount__gt=0, then=F("amount")), default=None, output_field=DecimalField()),
        Case(When(amount__lt=0, then=-F("amount")), default=None, output_field=DecimalField()),
        cells["c2"],
        cells["c3"],
        cells["c4"],
        cells["c5"],
    )


def _in_steps(filters: dict, rows) -> Iterator[QuerySet]:
    """`rows(filters)` in steps of COPY_STEP journal entries (an indexed range of `seq`), so a
    background job can report progress between the steps on the same connection. The seq range
    is read once; each step is the export's query bounded by its slice of seqs."""
    bounds = _queryset(filters).aggregate(low=Min("entry__seq"), high=Max("entry__seq"))
    low, high = bounds["low"], bounds["high"]
    for start in range(low, high + 1, COPY_STEP) if low is not None else ():
        yield rows(filters).filter(entry__seq__gte=start, entry__seq__lt=start + COPY_STEP)


# A step is a small slice of the join, yet the planner hashes the whole postings and orders tables
# for it (a slice is ~5% of them), so every step cost a scan of both: at 1M postings the steps
# cost twice the one COPY. Nested loops through the seq, entry_id and primary-key indexes make a
# step cost its own rows, so many steps cost about one COPY.
_STEP_PLAN = {"enable_hashjoin": "off", "enable_mergejoin": "off"}


@contextmanager
def _step_plan(cursor):
    """The planner settings for the steps, set on this connection and put back afterwards."""
    from psycopg2.extensions import TRANSACTION_STATUS_INERROR

    before = {}
    for name, value in _STEP_PLAN.items():
        cursor.execute("SELECT current_setting(%s)", [name])
        before[name] = cursor.fetchone()[0]
        cursor.execute("SELECT set_config(%s, %s, false)", [name, value])
    try:
        yield
    finally:
        # In a transaction a failed COPY aborted, its rollback undoes the settings instead.
        if cursor.cursor.connection.get_transaction_status() != TRANSACTION_STATUS_INERROR:
            for name, value in before.items():
                cursor.execute("SELECT set_config(%s, %s, false)", [name, value])


def copy_csv(filters: dict, path: str, progress: Progress | None = None) -> int:
    """Write the CSV export with PostgreSQL's COPY; returns the number of postings written.

    One COPY per step of entries (_in_steps), progress reported after each.
    """
    header = io.StringIO()
    header.write("\ufeff")  # Excel reads UTF-8 only with the BOM
    csv.writer(header, lineterminator="\n").writerow(EXPORT_COLUMNS)  # COPY ends lines with \n
    written = 0
    with open(path, "wb") as fh, connection.cursor() as cursor, _step_plan(cursor):
        fh.write(header.getvalue().encode())
        raw = cursor.cursor
        for part in _in_steps(filters, _copy_queryset):
            sql, params = part.query.sql_with_params()
            statement = raw.mogrify(sql, params).decode()
            raw.copy_expert(f"COPY ({statement}) TO STDOUT WITH (FORMAT csv)", fh)
            written += raw.rowcount
            if progress:
                progress(written)
    if progress and not written:
        progress(0)
    return written


# ---------------------------------------------------------------------------------------------
# XLSX rows rendered by PostgreSQL
# ---------------------------------------------------------------------------------------------
# The `<row>` _row_xml makes, built by the database as one text column, so Python only joins
# strings into the sheet's deflate stream (ledger.books.xlsx.row_sql). Same steps as copy_csv.


def sql_xlsx(filters: dict, path: str, progress: Progress | None = None) -> int:
    """Write the XLSX export with rows rendered by PostgreSQL; returns the postings written."""
    with _xlsx_stream(path) as stream, connection.cursor() as cursor, _step_plan(cursor):
        for part in _in_steps(filters, _queryset):
            sql, params = part.query.sql_with_params()
            cursor.execute(xlsx.row_sql(sql), xlsx.ROW_TEXT_PARAMS + tuple(params))
            while rows := cursor.fetchmany(CHUNK * 5):
                stream.write([row for (row,) in rows])
            if progress:
                progress(stream.written)
        written = stream.written
    if progress and not written:
        progress(0)
    return written


# ---------------------------------------------------------------------------------------------
# Export jobs
# ---------------------------------------------------------------------------------------------
@transaction.atomic
def export_job_create(*, filters: dict, fmt: str, user, rows_total: int | None = None) -> ExportJob:
    """Record an export (who, which filters) and queue it for a worker after commit."""
    if fmt not in FORMATS:
        raise InvalidExport(UNKNOWN_FORMAT)
    if fmt == "xlsx" and rows_total is not None and rows_total > XLSX_MAX_ROWS:
        raise InvalidExport(XLSX_TOO_BIG.format(count=rows_total, limit=XLSX_MAX_ROWS))
    job = ExportJob.objects.create(created_by=user, format=fmt, filters=filters, rows_total=rows_total)
    audit_record(
        actor=user, action=AuditAction.LEDGER_EXPORT_QUEUED, obj=job, after={"format": fmt, **filters}
    )
    transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _enqueue(job_id: int) -> None:
    from django_q.tasks import async_task

    async_task("ledger.books.exports.run_export_job", job_id, task_name=f"ledger export #{job_id}")


@transaction.atomic
def export_record_direct(*, filters: dict, fmt: str, user, rows: int) -> ExportJob:
    """Record a small export downloaded at once (no file kept): who exported what, and when."""
    now = timezone.now()
    job = ExportJob.objects.create(
        created_by=user,
        format=fmt,
        filters=filters,
        status=ExportStatus.DONE,
        rows_total=rows,
        rows_done=rows,
        started_at=now,
        finished_at=now,
    )
    audit_record(
        actor=user, action=AuditAction.LEDGER_EXPORT_DOWNLOADED, obj=job, after={"format": fmt, **filters}
    )
    return job


def run_export_job(job_id: int) -> None:
    """django-q2 entry point: write the job's file, updating progress every chunk.

    Safe to run twice: a finished job is left alone; a failed or interrupted one starts over.
    """
    job = ExportJob.objects.get(pk=job_id)
    if job.status == ExportStatus.DONE and job.file:
        return
    total = export_count(job.filters)
    ExportJob.objects.filter(pk=job_id).update(
        status=ExportStatus.RUNNING, started_at=timezone.now(), rows_total=total, rows_done=0, error=""
    )

    def progress(done):
        ExportJob.objects.filter(pk=job_id).update(rows_done=done)

    fd, tmp_path = tempfile.mkstemp(suffix="." + job.format)
    os.close(fd)
    try:
        written = export_write(filters=job.filters, fmt=job.format, path=tmp_path, progress=progress)
        job.refresh_from_db()
        with open(tmp_path, "rb") as fh:
            job.file.save(f"ledger_{job.pk}_{export_filename(job.filters, job.format)}", File(fh), save=False)
        job.status = ExportStatus.DONE
        job.rows_done = written
        job.finished_at = timezone.now()
        job.save(update_fields=["file", "status", "rows_done", "finished_at"])
    except Exception as exc:
        logger.exception("ledger export #%s failed", job_id)
        ExportJob.objects.filter(pk=job_id).update(
            status=ExportStatus.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
    finally:
        os.unlink(tmp_path)
