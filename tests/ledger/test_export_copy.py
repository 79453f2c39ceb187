"""The PostgreSQL CSV export (COPY) writes the same cells as the csv-module writer, to the byte
once line ends are set aside: formula-like text guarded, numbers left alone, commas, quotes,
newlines and non-ASCII quoted as the csv module quotes them, Nairobi times, debit/credit split."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.db import connection

from console.kernel.clock import NAIROBI
from ledger import books
from ledger.books import exports
from ledger.books.selectors import EXPORT_COLUMNS
from ledger.models import OrderStatus
from tests.ledger.factories import OrderFactory

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db]
D = Decimal
MEMOS = [
    '=HYPERLINK("http://x")',
    "+254712345678",
    "-150.00",
    "@SUM(A1)",
    "\tTabbed",
    'He said "paid", twice',
    "Line one\nline two",
    "Malipo ya Ksh 1,500 — asante",
    "",
    "1,500.00",
]


@pytest.fixture
def tricky_entries():
    order = OrderFactory(status=OrderStatus.PAID, gateway="payhero", price=D("150"), reference="TXN-COPY0001")
    when = dt.datetime(2026, 3, 2, 0, 30, tzinfo=NAIROBI)
    for index, memo in enumerate(MEMOS):
        books.entry_post(
            kind="till_receipt",
            lines=[("mpesa_till", D("1500.50")), ("unallocated_receipts", D("-1500.50"))],
            order=order if index == 0 else None,
            receipt_code=f"TK{index}ABC2DEF",
            channel="till",
            memo=memo,
            posted_at=when + dt.timedelta(minutes=index),
        )


def _python_csv(filters):
    buf = io.StringIO(newline="")
    buf.write("")
    rows = exports.export_rows(filters)
    exports.write_csv(rows, buf)
    return buf.getvalue()


def test_copy_export_matches_the_python_writer(tricky_entries, tmp_path):
    assert connection.vendor == "postgresql"
    filters = exports.export_filters(date_from=dt.date(2026, 3, 2), date_to=dt.date(2026, 3, 2))
    path = tmp_path / "copy.csv"
    written = exports.export_write(filters=filters, fmt="csv", path=str(path))
    copied = path.read_bytes().decode("utf-8")
    expected = _python_csv(filters)
    assert written == 2 * len(MEMOS)
    assert copied.startswith("\ufeff" + ",".join(EXPORT_COLUMNS))
    # The csv module ends lines with \r\n, COPY with \n; every cell is the same.
    assert copied.replace("\r\n", "\n") == expected.replace("\r\n", "\n")
    assert "'=HYPERLINK" in copied and "'@SUM(A1)" in copied and "'\tTabbed" in copied
    assert ",+254712345678\n" in copied  # a number, not a formula: left alone
    assert ",-150.00\n" in copied and ",1500.50,," in copied and ",,1500.50," in copied


def test_copy_export_reports_progress_and_the_count(tricky_entries, tmp_path, monkeypatch):
    monkeypatch.setattr(exports, "COPY_STEP", 3)
    seen = []
    filters = exports.export_filters(date_from=dt.date(2026, 3, 1), date_to=dt.date(2026, 3, 3))
    written = exports.export_write(
        filters=filters, fmt="csv", path=str(tmp_path / "a.csv"), progress=seen.append
    )
    assert written == 2 * len(MEMOS) == exports.export_count(filters)
    assert seen == [6, 12, 18, 20]  # one report per COPY of three entries


def test_the_fixed_offset_time_equals_the_named_zone_time(tricky_entries, tmp_path, monkeypatch):
    filters = exports.export_filters(date_from=dt.date(2026, 3, 2), date_to=dt.date(2026, 3, 2))
    exports.export_write(filters=filters, fmt="csv", path=str(tmp_path / "fixed.csv"))
    monkeypatch.setattr(exports, "_FIXED_OFFSET_SINCE", dt.date(9999, 1, 1))  # the zone by name
    exports.export_write(filters=filters, fmt="csv", path=str(tmp_path / "named.csv"))
    assert (tmp_path / "fixed.csv").read_bytes() == (tmp_path / "named.csv").read_bytes()
    assert b",2026-03-02 00:30:00," in (tmp_path / "fixed.csv").read_bytes()


def test_the_steps_planner_settings_are_put_back(tricky_entries, tmp_path):
    filters = exports.export_filters(date_from=dt.date(2026, 3, 2), date_to=dt.date(2026, 3, 2))
    for fmt in ("csv", "xlsx"):
        exports.export_write(filters=filters, fmt=fmt, path=str(tmp_path / f"out.{fmt}"))
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('enable_hashjoin'), current_setting('enable_mergejoin')")
            assert cursor.fetchone() == ("on", "on")
