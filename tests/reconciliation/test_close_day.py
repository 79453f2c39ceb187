"""Daily close: paid-in vs books vs delivered, the command's exit code and the sign-off."""

import datetime as dt

import pytest
from django.core.management import call_command

from ledger import books
from ledger.models import OrderStatus
from reconciliation.models import DayClose
from reconciliation.services.close import day_close, day_figures
from reconciliation.services.errors import DayAlreadyClosed
from reconciliation.services.matcher import claims_reconcile

from .factories import NOW, ClaimFactory, receipt

pytestmark = pytest.mark.django_db
DAY = NOW.date()


def deliver_all():
    from reconciliation.models import Claim

    for claim in Claim.objects.filter(status="verified").select_related("order"):
        order = claim.order
        order.status = OrderStatus.DELIVERED
        order.delivered_at = NOW + dt.timedelta(minutes=30)
        order.save()
        books.post_delivery(order=order)


def test_balanced_day_when_every_receipt_was_delivered(bundles):
    r = receipt(amount="150")
    ClaimFactory(code=r.code)
    claims_reconcile(trigger="test", now=NOW)
    deliver_all()
    figures = day_figures(day=DAY)
    assert figures["paid_in"] == figures["books_till_movement"] == figures["delivered"] == "150.00"
    assert figures["balanced"] and figures["differences"] == []
    call_command("close_day", DAY.isoformat())  # exit 0


def test_undelivered_receipt_is_listed_and_command_exits_1(bundles, capsys):
    receipt(amount="150")
    figures = day_figures(day=DAY)
    assert not figures["balanced"]
    (diff,) = figures["differences"]
    assert diff["check"] == "paid_in_vs_delivered" and diff["difference"] == "150.00"
    assert diff["receipts_not_delivered"][0]["amount"] == "150.00"
    with pytest.raises(SystemExit) as exc:
        call_command("close_day", DAY.isoformat())
    assert exc.value.code == 1
    assert "DIFFERENCE paid_in_vs_delivered: 150.00" in capsys.readouterr().out


def test_other_days_are_not_counted(bundles):
    receipt(amount="150", paid_at=NOW - dt.timedelta(days=1))
    assert day_figures(day=DAY)["paid_in"] == "0.00"


def test_finance_confirms_once(bundles, finance):
    close = day_close(day=DAY, user=finance)
    assert close.balanced and DayClose.objects.get(day=DAY).closed_by == finance
    with pytest.raises(DayAlreadyClosed):
        day_close(day=DAY, user=finance)


def test_bad_date_is_a_clear_error():
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="not a date"):
        call_command("close_day", "2026-13-40")
