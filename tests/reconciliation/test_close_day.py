"""Daily close: paid-in vs books vs delivered, the command's exit code and the sign-off."""

import datetime as dt

import pytest
from django.core.management import call_command

from ledger import books
from ledger.models import OrderStatus
from reconciliation.models import DayClose
from reconciliation.services.close import NO_ORDER_YET, day_close, day_figures
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
    assert figures["status"] == "Balanced"
    call_command("close_day", DAY.isoformat())  # exit 0


def test_paid_but_not_delivered_is_pending_not_a_difference(bundles, capsys):
    # Every normal day read "DIFFERENCES" while orders waited for delivery; they are now apart.
    first, second = receipt(amount="150"), receipt(amount="1500")
    ClaimFactory(code=first.code)
    ClaimFactory(code=second.code)
    claims_reconcile(trigger="test", now=NOW)
    figures = day_figures(day=DAY)
    assert figures["delivery_pending"]["count"] == 2
    assert figures["delivery_pending"]["amount"] == "1650.00"
    assert {r["receipt"] for r in figures["delivery_pending"]["rows"]} == {first.code, second.code}
    assert all(r["order_id"] for r in figures["delivery_pending"]["rows"])
    assert figures["balanced"] and figures["status"] == "Balanced — 2 deliveries pending"
    call_command("close_day", DAY.isoformat())  # exit 0: pending deliveries are not differences
    unclaimed = receipt(amount="50")  # money with no order at all is a difference
    (diff,) = day_figures(day=DAY)["differences"]
    assert [r["receipt"] for r in diff["rows"]] == [unclaimed.code] and diff["difference"] == "50.00"
    assert "PENDING 2 paid, delivery pending: 1650.00" in capsys.readouterr().out


def test_undelivered_receipt_is_listed_and_command_exits_1(bundles, capsys):
    receipt(amount="150")
    figures = day_figures(day=DAY)
    assert not figures["balanced"]
    (diff,) = figures["differences"]
    assert diff["check"] == "paid_in_vs_delivered" and diff["difference"] == "150.00"
    (row,) = diff["rows"]  # was "receipts_not_delivered": every difference now lists "rows"
    assert row["amount"] == "150.00" and row["what"] == NO_ORDER_YET and row["receipt_id"]
    assert figures["status"] == "1 difference to check"
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
