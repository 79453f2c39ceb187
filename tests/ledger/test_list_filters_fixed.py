"""List filters on free-text columns (gateway, entry channel) offer fixed choices: a list page
never runs SELECT DISTINCT over the whole table to find them, and the choices still filter."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ledger import books
from ledger.models import OrderStatus
from tests.ledger.factories import OrderFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:ledger_order_changelist",
        "admin:ledger_stkrequest_changelist",
        "admin:ledger_journalentry_changelist",
    ],
)
def test_list_pages_run_no_distinct_scan_for_their_filters(client_for, superuser, url_name):
    OrderFactory(status=OrderStatus.PAID, gateway="payhero")
    client = client_for(superuser)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse(url_name))
    assert response.status_code == 200
    distinct = [q["sql"] for q in ctx.captured_queries if "DISTINCT" in q["sql"].upper()]
    assert distinct == []


def test_gateway_and_channel_choices_filter_the_rows(client_for, superuser):
    paid = OrderFactory(status=OrderStatus.PAID, gateway="payhero", price=Decimal("150"))
    other = OrderFactory(status=OrderStatus.PAID, gateway="daraja", price=Decimal("150"))
    client = client_for(superuser)
    page = client.get(reverse("admin:ledger_order_changelist"), {"gateway": "payhero"}).content.decode()
    assert paid.reference in page and other.reference not in page
    assert "PayHero" in page and "Daraja" in page  # the choices, without reading the table
    books.entry_post(
        kind="till_receipt",
        lines=[("mpesa_till", Decimal("99")), ("unallocated_receipts", Decimal("-99"))],
        receipt_code="TK1ABC2DEF",
        channel="till",
        memo="till",
    )
    journal = reverse("admin:ledger_journalentry_changelist")
    assert "TK1ABC2DEF" in client.get(journal, {"channel": "till"}).content.decode()
    assert "TK1ABC2DEF" not in client.get(journal, {"channel": "stk"}).content.decode()
