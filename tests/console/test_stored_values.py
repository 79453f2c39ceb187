"""No stored value can break a page.

On PostgreSQL a C2B receipt dated year 1 (Nairobi time, so 1 BC in UTC) was once stored with its
immutable journal entry, after which the dashboard, the Journal and Till receipts answered 500
for everyone: psycopg2 cannot load a BC or post-9999 timestamp, and a 9999-12-31 UTC time
overflows when shown in Nairobi. Such rows are written here past every check (the ORM with raw
values, raw SQL for what Python cannot hold) and every page that lists or shows them must still
answer 200, for a superuser and for finance.
"""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.models.expressions import RawSQL
from django.urls import reverse

from console.kernel.admin_base import money, nairobi
from ledger import books
from ledger.books import posting
from ledger.models import JournalEntry
from reconciliation.models import ReceiptSource, TillReceipt

pytestmark = pytest.mark.django_db
NAIROBI = ZoneInfo("Africa/Nairobi")
UTC = dt.UTC
AMOUNT = Decimal("100.00")


def _edge_times() -> list:
    """The first and last instants Python holds (both engines); on PostgreSQL also values past them."""
    times = [dt.datetime(1, 1, 1, tzinfo=UTC), dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]
    if connection.vendor == "postgresql":
        times += [
            dt.datetime(1, 1, 1, tzinfo=NAIROBI),  # the incident: TransTime 00010101000000, 1 BC in UTC
            RawSQL("'20000-01-01 00:00:00+00'::timestamptz", []),
            RawSQL("'infinity'::timestamptz", []),
            RawSQL("'-infinity'::timestamptz", []),
        ]
    return times


@pytest.fixture
def stored_edges(db, monkeypatch):
    """A till receipt and its journal entry at each edge time; returns the receipt codes.

    Such rows come from older code or straight SQL, not through today's booking rules (which
    would refuse them): the closed-day lookup is bypassed so the raw values are stored as they are.
    """
    monkeypatch.setattr(posting, "nairobi_day", lambda when: dt.date(2000, 1, 1))
    monkeypatch.setattr(posting, "booking_time", lambda value_at, closed=None: value_at)
    codes = []
    for i, when in enumerate(_edge_times()):
        code = f"QZZ{i:07d}"
        TillReceipt.objects.create(code=code, amount=AMOUNT, paid_at=when, source=ReceiptSource.C2B)
        books.post_till_receipts_bulk([(code, AMOUNT, when)])
        codes.append(code)
    return codes


def _pages(codes) -> list[str]:
    entries = JournalEntry.objects.filter(receipt_code__in=codes).values_list("pk", flat=True)
    receipts = TillReceipt.objects.filter(code__in=codes).values_list("pk", flat=True)
    journal = reverse("admin:ledger_journalentry_changelist")
    till = reverse("admin:reconciliation_tillreceipt_changelist")
    return [
        reverse("admin:index"),
        journal,
        f"{journal}?q={codes[0]}",
        f"{journal}?o=2",  # by posting time, both ways: the edges come first
        f"{journal}?o=-2",
        till,
        f"{till}?matched=no",  # the dashboard's suspense link
        f"{till}?o=-1",
        f"/admin/find/?q={codes[-1]}",  # "find anything" lists receipts too
        *(reverse("admin:ledger_journalentry_change", args=[pk]) for pk in entries),
        *(reverse("admin:reconciliation_tillreceipt_change", args=[pk]) for pk in receipts),
    ]


@pytest.mark.parametrize("who", ["superuser", "finance"])
def test_pages_listing_and_showing_edge_times_answer_200(client, request, stored_edges, who):
    client.force_login(request.getfixturevalue(who))
    pages = _pages(stored_edges)
    assert len(pages) == 9 + 2 * len(stored_edges)
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url


def test_edge_rows_are_all_listed(client, superuser, stored_edges):
    """Loading does not drop or hide them: every edge receipt is on the list, findable by code."""
    client.force_login(superuser)
    page = client.get(reverse("admin:reconciliation_tillreceipt_changelist")).content.decode()
    assert all(code in page for code in stored_edges)


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        dt.datetime(1, 1, 1, tzinfo=UTC),
        dt.datetime(1, 1, 1, tzinfo=NAIROBI),
        dt.datetime(2026, 3, 1, 12, 0),  # naive
        "2026-03-01",
    ],
)
def test_nairobi_never_raises(value):
    assert nairobi(value)


def test_nairobi_reads_as_before_for_ordinary_times():
    assert nairobi(dt.datetime(2026, 11, 22, 2, 46, tzinfo=UTC)) == "22 Nov 2026 05:46"
    assert nairobi(None) == "—"


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), "abc", object()])
def test_money_never_raises(value):
    assert money(value)


def test_money_reads_as_before():
    assert money(Decimal("1500")) == "1,500.00" and money(None) == "—"
