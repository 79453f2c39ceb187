"""The dashboard and the daily summary show the same sales for a day, and paid-but-not-delivered
orders as their own figure beside it (one selector: ledger.books.selectors.sales_between)."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from ledger.models import Channel, OrderStatus

from .test_dashboard import make_order

pytestmark = pytest.mark.django_db


def figure(html: str, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}"[^>]*>([^<]+)<', html)
    assert match, testid
    return match.group(1).strip()


@pytest.fixture
def mixed_day(bundles):
    daily, weekly = bundles["daily-2gb"], bundles["weekly-15gb"]  # Ksh 150 and a dearer one
    now = timezone.now()
    make_order(daily, channel=Channel.STK, status=OrderStatus.DELIVERED, paid_at=now)
    make_order(weekly, channel=Channel.TILL, status=OrderStatus.DELIVERED, paid_at=now)
    make_order(daily, channel=Channel.STK, status=OrderStatus.PAID, paid_at=now)
    make_order(weekly, channel=Channel.TILL, status=OrderStatus.PAID, paid_at=now)
    make_order(daily, status=OrderStatus.REFUNDED, paid_at=now)
    make_order(daily, status=OrderStatus.FAILED, paid_at=None)
    make_order(daily, status=OrderStatus.DELIVERED, paid_at=now - dt.timedelta(days=2))
    return {"sales": daily.price + weekly.price, "pending": daily.price + weekly.price}


def test_dashboard_and_daily_summary_show_the_same_sales(mixed_day, finance, client_for):
    client = client_for(finance)
    dashboard = client.get(reverse("admin:index")).content.decode()
    today = timezone.localdate().isoformat()
    summary = client.get(reverse("admin:ledger_daily_summary"), {"day": today}).content.decode()
    expected = f"Ksh {mixed_day['sales']:,.0f}"
    assert figure(dashboard, "sales-today") == expected
    assert figure(summary, "summary-sales") == expected
    pending = f"Ksh {mixed_day['pending']:,.0f}"
    assert figure(dashboard, "pending-today").startswith(f"Paid, delivery pending: {pending} (2)")
    assert figure(summary, "summary-pending") == pending


def test_daily_summary_and_trial_balance_right_align_amounts(mixed_day, finance, client_for):
    client = client_for(finance)
    summary = client.get(reverse("admin:ledger_daily_summary")).content.decode()
    cells = re.findall(r'<td class="([^"]*)"[^>]*>([^<]*)</td>', summary)
    amounts = [classes for classes, text in cells if re.fullmatch(r"[\d,]+\.\d\d", text.strip())]
    assert amounts and all("text-right" in c and "tabular-nums" in c for c in amounts)
    assert re.search(r'<th class="[^"]*text-right[^"]*">Amount \(KES\)</th>', summary)
    trial = client.get(reverse("admin:ledger_trial_balance")).content.decode()
    assert re.search(r'<th class="[^"]*text-right[^"]*">Debit \(KES\)</th>', trial)
    assert re.search(r'<th class="[^"]*text-left[^"]*">Account</th>', trial)
