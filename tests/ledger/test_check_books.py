"""`manage.py check_books` and `books_check()`: healthy books pass, broken rows are named."""

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from ledger import books, services
from ledger.models import Account, OrderStatus
from tests.ledger.factories import OrderFactory

pytestmark = pytest.mark.django_db
D = Decimal
INSERT_ENTRY = (
    "INSERT INTO ledger_journalentry (seq, number, kind, posted_at, memo, reason, receipt_code, channel)"
    " VALUES (%s, %s, 'adjustment', %s, '', '', '', '')"
)


@pytest.fixture
def healthy_books():
    order = OrderFactory(
        status=OrderStatus.DELIVERED, gateway="payhero", price=D("150"), amount_paid=D("150")
    )
    books.post_stk_payment(order=order, amount=D("150"), receipt="SAE3YULR0Y", gateway="payhero")
    books.post_delivery(order=order)
    return order


def _raw_cursor():
    """A cursor that gets past the database's own guards: none on SQLite; on PostgreSQL the
    triggers are skipped for this (rolled back) test transaction, as a careless DBA might."""
    cursor = connection.cursor()
    if connection.vendor == "postgresql":
        cursor.execute("SET LOCAL session_replication_role = replica")
    return cursor


def _check_books():
    out = io.StringIO()
    try:
        call_command("check_books", stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def test_healthy_books_pass_and_print_the_trial_balance(healthy_books):
    code, out = _check_books()
    assert code == 0
    assert "STK clearing - PayHero" in out and "150.00" in out and "all invariants hold" in out
    assert books.books_check() == []


def test_an_unbalanced_entry_inserted_with_raw_sql_is_caught(healthy_books):
    # Raw SQL gets past everything the application refuses; check_books still finds it.
    till = Account.objects.get(key="mpesa_till")
    with _raw_cursor() as cursor:
        cursor.execute(INSERT_ENTRY, [777, "JE-000777", timezone.now()])
        cursor.execute("SELECT id FROM ledger_journalentry WHERE seq = 777")
        entry_id = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO ledger_posting (entry_id, account_id, amount) VALUES (%s, %s, 12.5)",
            [entry_id, till.pk],
        )
    code, out = _check_books()
    assert code == 1
    assert "JE-000777 is unbalanced by 12.5" in out
    assert "Total debits and credits differ by 12.5" in out


def test_an_entry_without_postings_is_caught(healthy_books):
    with _raw_cursor() as cursor:
        cursor.execute(INSERT_ENTRY, [778, "JE-000778", timezone.now()])
    assert books.books_check() == ["JE-000778 has no postings."]


def test_paid_order_without_a_payment_entry_is_caught():
    order = OrderFactory(status=OrderStatus.PAID)
    assert books.books_check() == [f"{order.reference} has 0 payment entries (expected 1)."]


def test_delivered_order_without_a_delivery_entry_is_caught():
    order = OrderFactory(status=OrderStatus.DELIVERED, gateway="daraja")
    books.post_stk_payment(order=order, amount=order.price, receipt="R1", gateway="daraja")
    assert books.books_check() == [f"{order.reference} has 0 delivery entries (expected 1)."]


def test_a_reversed_payment_no_longer_counts(finance):
    order = OrderFactory(status=OrderStatus.PAID, gateway="payhero", price=D("150"), amount_paid=D("150"))
    payment = books.post_stk_payment(order=order, amount=D("150"), receipt="SAE3YULR0Y", gateway="payhero")
    # A reversal the order did not follow (it stays paid): the check counts payments net of reversals.
    books.post_reversal(entry=payment, reason="posted twice by mistake", user=finance)
    assert books.books_check() == [f"{order.reference} has 0 payment entries (expected 1)."]


def test_a_refunded_order_keeps_its_payment_entry(healthy_books, finance):
    services.order_refund(order=healthy_books, reason="customer asked", user=finance)
    assert books.books_check() == []
