"""The STK settlement sweep of a scheduled matcher run follows the "since the previous run" rule.

A receipt booked as unallocated becomes an STK settlement once an STK payment entry carries its
code, so a scheduled run after a recent full run sweeps only the receipts recorded since the
previous run and those whose code an STK payment entry booked since carries; it never re-reads
the older ones. A full run (every MATCHER_FULL_RUN_EVERY) sweeps the whole SWEEP_WINDOW, a manual
run every receipt.
"""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ledger import books
from ledger.books.errors import InvalidEntry
from reconciliation.models import SettlementState, TillReceipt
from reconciliation.services import matcher, settlement
from reconciliation.services.matcher import claims_reconcile

from .factories import receipt
from .test_stk_settlement import STK_CODE, second_stk_payment, stk_paid

pytestmark = pytest.mark.django_db
SECOND_CODE = "UCA7SEC0ND"


class Clock:
    """The application's clock (django.utils.timezone.now, auto_now fields included), moved by hand."""

    def __init__(self):
        self.at = timezone.now()

    def __call__(self):
        return self.at

    def advance(self, minutes: int = 10) -> None:
        self.at += dt.timedelta(minutes=minutes)


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(timezone, "now", clock)
    return clock


def scheduled():
    return claims_reconcile(trigger="schedule")


def settled_states() -> dict[str, str]:
    return dict(TillReceipt.objects.values_list("code", "settlement"))


def runs_until_idle(clock) -> None:
    """A full scheduled run, then a run of changes: what is recorded so far is history."""
    clock.advance()
    scheduled()
    clock.advance()
    assert scheduled().scope == "changed"
    clock.advance()


def test_a_receipt_recorded_before_the_previous_run_is_settled_once_its_stk_payment_is_confirmed(
    bundles, clock
):
    till = receipt(code=STK_CODE, amount="150")  # the C2B confirmation came first: unallocated
    runs_until_idle(clock)
    assert settled_states() == {STK_CODE: SettlementState.NONE}
    order = stk_paid()  # the gateway's confirmation, well after the previous run
    run = scheduled()
    assert run.scope == "changed" and run.counts["stk_settled"] == 1
    till.refresh_from_db()
    assert till.settlement == SettlementState.SETTLED and till.order == order
    assert books.books_check() == []


def test_a_second_stk_payment_confirmed_later_settles_its_earlier_receipt_though_the_order_is_unchanged(
    bundles, clock
):
    order = stk_paid()
    till = receipt(code=SECOND_CODE, amount="150")  # a second prompt's money reached the till first
    runs_until_idle(clock)
    updated = order.updated_at
    second_stk_payment(order, SECOND_CODE)  # booked; the paid order itself is not touched
    order.refresh_from_db()
    assert order.updated_at == updated
    run = scheduled()
    assert run.scope == "changed" and run.counts["stk_settled"] == 1
    till.refresh_from_db()
    assert till.settlement == SettlementState.SETTLED
    assert books.books_check() == []


def test_a_new_receipt_and_its_stk_payment_are_settled_by_the_next_scheduled_run(bundles, clock):
    runs_until_idle(clock)
    till = receipt(code=STK_CODE, amount="150")
    clock.advance(1)
    stk_paid()
    run = scheduled()
    assert run.scope == "changed" and run.counts["stk_settled"] == 1
    till.refresh_from_db()
    assert till.settlement == SettlementState.SETTLED


def test_an_idle_scheduled_run_does_not_read_older_receipts_again(bundles, clock, monkeypatch):
    looked_up = []
    lookup = settlement.stk_payments

    def stk_payments(codes, **kwargs):
        looked_up.extend(codes)
        return lookup(codes, **kwargs)

    monkeypatch.setattr(settlement, "stk_payments", stk_payments)

    def idle_run_queries() -> int:
        looked_up.clear()
        with CaptureQueriesContext(connection) as queries:
            run = scheduled()
        assert run.scope == "changed" and not run.counts.get("stk_settled")
        assert looked_up == []  # no receipt was checked against the STK payments
        return len(queries)

    for _ in range(2):
        receipt(amount="150")
    runs_until_idle(clock)
    few = idle_run_queries()
    for _ in range(30):
        receipt(amount="150")
    runs_until_idle(clock)
    assert idle_run_queries() == few
    assert TillReceipt.objects.unmatched().filter(settlement=SettlementState.NONE).count() == 32


def test_a_manual_run_sweeps_what_scheduled_runs_no_longer_look_at(bundles, clock, monkeypatch):
    till = receipt(code=STK_CODE, amount="150")
    runs_until_idle(clock)
    stk_paid()
    clock.advance(1)  # the next run starts over a minute later (longer than CHANGES_OVERLAP)
    with monkeypatch.context() as failing:  # the settlement fails once: left for a later run
        failing.setattr(books, "post_stk_settlement_of_unallocated", raise_invalid_entry)
        assert not scheduled().counts.get("stk_settled")
    clock.advance()
    # The receipt and its STK payment are both older than the previous run: not looked at again.
    assert scheduled().scope == "changed"
    till.refresh_from_db()
    assert till.settlement == SettlementState.NONE
    assert claims_reconcile(trigger="manual").counts["stk_settled"] == 1
    till.refresh_from_db()
    assert till.settlement == SettlementState.SETTLED


def test_the_next_full_run_settles_what_a_failed_settlement_left(bundles, clock, monkeypatch):
    till = receipt(code=STK_CODE, amount="150")
    runs_until_idle(clock)
    stk_paid()
    with monkeypatch.context() as failing:
        failing.setattr(books, "post_stk_settlement_of_unallocated", raise_invalid_entry)
        scheduled()
    clock.advance()
    monkeypatch.setattr(matcher, "FULL_RUN_EVERY", dt.timedelta(0))  # the full run is due
    run = scheduled()
    assert run.scope == "all" and run.counts["stk_settled"] == 1
    till.refresh_from_db()
    assert till.settlement == SettlementState.SETTLED


def raise_invalid_entry(**kwargs):
    raise InvalidEntry("Unknown account(s): stk_clearing_daraja.")


def test_a_scheduled_run_is_full_again_once_the_last_full_run_is_older_than_full_run_every(bundles, clock):
    runs_until_idle(clock)
    last_full = matcher.FULL_RUN_EVERY.total_seconds() // 60
    clock.advance(int(last_full) - 25)  # the full run was FULL_RUN_EVERY - 5 minutes ago
    assert scheduled().scope == "changed"
    clock.advance(6)
    assert scheduled().scope == "all"
    clock.advance()
    assert scheduled().scope == "changed"
