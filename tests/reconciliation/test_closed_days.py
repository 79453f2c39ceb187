"""Closed days stay closed: money that turns up later for a closed day is booked on the next open
day, listed on the closed day as "after close", and flagged on the dashboard; finance can reopen
a day with a reason and close it again."""

import datetime as dt
from unittest import mock

import pytest
from django.core.management import call_command

from console.models import AuditEvent
from ledger import books
from ledger.models import BooksClosedDay, JournalEntry
from reconciliation.models import DayClose
from reconciliation.services.close import day_close, day_figures, day_reopen
from reconciliation.services.errors import DayAlreadyClosed, DayNotClosed

from .factories import NAIROBI, NOW, receipt

pytestmark = pytest.mark.django_db
DAY = NOW.date()


def entry_for(code) -> JournalEntry:
    return JournalEntry.objects.get(receipt_code=code, kind="till_receipt")


def test_a_receipt_for_a_closed_day_books_on_the_next_open_day_and_the_figures_stand(finance):
    first = receipt(amount="150")
    closed = day_close(day=DAY, user=finance)
    assert BooksClosedDay.objects.filter(day=DAY).exists()
    before = day_figures(day=DAY)

    late = receipt(amount="100", paid_at=NOW - dt.timedelta(hours=2))  # a pasted SMS, say
    entry = entry_for(late.code)
    assert entry.value_at == late.paid_at
    assert entry.posted_at == dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time.min, tzinfo=NAIROBI)
    assert entry.after_close and not entry_for(first.code).after_close

    after = day_figures(day=DAY)
    for key in ("paid_in", "books_till_movement", "receipts", "balanced"):
        assert after[key] == before[key] == closed.figures[key]
    assert [row["receipt"] for row in after["after_close"]] == [late.code]
    assert books.books_check() == []


def test_consecutive_closed_days_book_on_the_first_open_one(finance):
    day_close(day=DAY, user=finance)
    day_close(day=DAY + dt.timedelta(days=1), user=finance)
    late = receipt(amount="100")
    expected = dt.datetime.combine(DAY + dt.timedelta(days=2), dt.time.min, tzinfo=NAIROBI)
    assert entry_for(late.code).posted_at == expected


def test_reopen_needs_a_reason_then_entries_book_on_the_day_again_and_it_closes_again(finance):
    day_close(day=DAY, user=finance)
    with pytest.raises(DayNotClosed):
        day_reopen(day=DAY, user=finance, reason="  ")
    day_reopen(day=DAY, user=finance, reason="statement row arrived late")
    assert not BooksClosedDay.objects.filter(day=DAY).exists()
    r = receipt(amount="100")
    assert not entry_for(r.code).after_close and entry_for(r.code).posted_at == r.paid_at
    with pytest.raises(DayNotClosed):
        day_reopen(day=DAY, user=finance, reason="again")

    again = day_close(day=DAY, user=finance)
    assert again.reopened_at is None and again.figures["paid_in"] == "100.00"
    assert DayClose.objects.count() == 1
    with pytest.raises(DayAlreadyClosed):
        day_close(day=DAY, user=finance)
    actions = list(AuditEvent.objects.order_by("pk").values_list("action", flat=True))
    assert actions.count("day.closed") == 2 and "day.reopened" in actions and "books.day_reopened" in actions
    assert AuditEvent.objects.get(action="day.reopened").reason == "statement row arrived late"


def test_close_day_command_lists_what_came_after_close(finance, capsys):
    day_close(day=DAY, user=finance)
    late = receipt(amount="100")
    with pytest.raises(SystemExit):  # the receipt is not delivered: differences exit 1
        call_command("close_day", (DAY + dt.timedelta(days=1)).isoformat())
    call_command("close_day", DAY.isoformat())  # the closed day's own figures are unchanged
    assert f"AFTER CLOSE {entry_for(late.code).number}" in capsys.readouterr().out


def test_dashboard_warns_and_the_journal_filters_entries_booked_after_close(finance, client_for, settings):
    day_close(day=DAY, user=finance)
    late = receipt(amount="100")  # booked at the start of the next day
    c = client_for(finance)
    listing = c.get("/admin/ledger/journalentry/?after_close=yes").content.decode()
    assert late.code in listing and "(after close)" in listing
    # The dashboard looks at the last 30 days of bookings: view it two days after the close.
    # (The patch moves the whole clock, so the session renewed on this request expires in the
    # patched past: the listing is fetched first.)
    with mock.patch("console.selectors.timezone.now", return_value=NOW + dt.timedelta(days=2)):
        html = c.get("/admin/").content.decode()
    assert 'data-testid="after-close"' in html and "1 entry for closed days" in html


def test_finance_reopens_a_day_from_its_page_with_a_reason(finance, client_for):
    close = day_close(day=DAY, user=finance)
    c = client_for(finance)
    url = f"/admin/reconciliation/dayclose/{close.pk}/reopen/"
    assert "Reopen" in c.get(url).content.decode()
    assert c.post(url, {"reason": ""}).status_code == 200  # the form again, nothing reopened
    assert BooksClosedDay.objects.filter(day=DAY).exists()
    resp = c.post(url, {"reason": "late statement"})
    assert resp.status_code == 302
    close.refresh_from_db()
    assert close.reopened_at is not None and close.reopen_reason == "late statement"
    assert not BooksClosedDay.objects.filter(day=DAY).exists()
    assert "reopened" in c.get(f"/admin/reconciliation/dayclose/{close.pk}/change/").content.decode()


def test_an_agent_cannot_reopen_a_day(agent, finance, client_for):
    close = day_close(day=DAY, user=finance)
    resp = client_for(agent).post(f"/admin/reconciliation/dayclose/{close.pk}/reopen/", {"reason": "x"})
    assert resp.status_code in (302, 403)
    assert BooksClosedDay.objects.filter(day=DAY).exists()
