"""The books in the admin: read-only journal, reversal and adjustment pages, reports, refunds."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from console.kernel.clock import NAIROBI
from ledger import books
from ledger.admin.books import order_refund_action
from ledger.books.forms import ADJUSTMENT_UNBALANCED
from ledger.books.selectors import daily_summary, trial_balance
from ledger.models import Account, EntryKind, JournalEntry, Order, OrderStatus, Posting
from tests.ledger.factories import OrderFactory

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def paid_order():
    order = OrderFactory(status=OrderStatus.PAID, gateway="payhero", price=D("150"), amount_paid=D("150"))
    books.post_stk_payment(order=order, amount=D("150"), receipt="SAE3YULR0Y", gateway="payhero")
    return order


@pytest.fixture
def entry(paid_order):
    return paid_order.journal_entries.get()


# --- nobody edits the books in the admin ------------------------------------------------------
@pytest.mark.parametrize("model", [JournalEntry, Posting, Account])
def test_no_one_may_add_change_or_delete_books_rows_not_even_a_superuser(superuser, finance, model):
    rf = RequestFactory()
    model_admin = admin.site._registry[JournalEntry]
    inline = model_admin.inlines[0](JournalEntry, admin.site)
    target = {JournalEntry: model_admin, Posting: inline, Account: admin.site._registry[Account]}[model]
    for user in (superuser, finance):
        request = rf.get("/")
        request.user = user
        if model is Posting:
            assert not target.has_add_permission(request, None)
        else:
            assert not target.has_add_permission(request)
        assert not target.has_change_permission(request, None)
        assert not target.has_delete_permission(request, None)


def test_superuser_cannot_post_changes_or_delete_an_entry_through_admin_urls(client_for, superuser, entry):
    client = client_for(superuser)
    change = reverse("admin:ledger_journalentry_change", args=[entry.pk])
    assert client.get(change).status_code == 200  # readable
    client.post(change, {"memo": "edited"})
    assert (
        client.post(reverse("admin:ledger_journalentry_delete", args=[entry.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert client.get(reverse("admin:ledger_journalentry_add")).status_code == 403
    entry.refresh_from_db()
    assert entry.memo != "edited"


def test_journal_lists_and_finds_entries_by_number_order_and_receipt(client_for, finance, entry, paid_order):
    client = client_for(finance)
    url = reverse("admin:ledger_journalentry_changelist")
    for term in (entry.number, paid_order.reference.lower(), "sae3yulr0y"):
        response = client.get(url, {"q": term})
        assert response.status_code == 200
        assert entry.number in response.content.decode(), term
    assert entry.number not in client.get(url, {"q": "JE-999999"}).content.decode()
    assert client.get(url, {"kind": "stk_payment"}).status_code == 200


def test_entry_page_shows_its_postings(client_for, finance, entry):
    html = (
        client_for(finance).get(reverse("admin:ledger_journalentry_change", args=[entry.pk])).content.decode()
    )
    assert "STK clearing - PayHero" in html and "Bundles owed" in html and "150.00" in html


def test_agent_cannot_see_the_journal(client_for, agent, entry):
    client = client_for(agent)
    assert client.get(reverse("admin:ledger_journalentry_changelist")).status_code == 403
    assert client.get(reverse("admin:ledger_trial_balance")).status_code == 403


# --- reversal ---------------------------------------------------------------------------------
def _reverse_url(entry):
    return reverse("admin:ledger_journalentry_reverse_entry", args=[entry.pk])


def test_reverse_asks_for_confirmation_and_a_reason_first(client_for, finance, entry):
    client = client_for(finance)
    page = client.get(_reverse_url(entry))
    assert page.status_code == 200 and "Post reversal" in page.content.decode()
    response = client.post(_reverse_url(entry), {"confirmed": "1", "reason": "   "})
    assert response.status_code == 200  # the form again, with its error
    assert not JournalEntry.objects.filter(kind=EntryKind.REVERSAL).exists()


def test_reverse_with_a_reason_posts_the_linked_mirror(client_for, finance, entry):
    response = client_for(finance).post(
        _reverse_url(entry), {"confirmed": "1", "reason": "Posted to the wrong gateway"}
    )
    reversal = JournalEntry.objects.get(kind=EntryKind.REVERSAL)
    assert response.status_code == 302
    assert reversal.reverses == entry and reversal.reason == "Posted to the wrong gateway"


def test_reverse_is_refused_to_an_agent(client_for, agent, entry):
    assert client_for(agent).post(_reverse_url(entry), {"confirmed": "1", "reason": "x"}).status_code == 403
    assert not JournalEntry.objects.filter(kind=EntryKind.REVERSAL).exists()


# --- adjustments ------------------------------------------------------------------------------
def _adjustment(**lines):
    data = {"memo": "Bank charge", "reason": "Statement line 14"}
    data.update(lines)
    return data


def test_finance_posts_a_balanced_adjustment(client_for, finance):
    url = reverse("admin:ledger_journalentry_post_adjustment")
    data = _adjustment(
        account_0="mpesa_till", debit_0="25.00", account_1="unallocated_receipts", credit_1="25.00"
    )
    response = client_for(finance).post(url, data)
    assert response.status_code == 302
    entry = JournalEntry.objects.get(kind=EntryKind.ADJUSTMENT)
    assert entry.reason == "Statement line 14" and entry.created_by == finance


def test_an_unbalanced_adjustment_is_shown_back_and_nothing_posted(client_for, finance):
    url = reverse("admin:ledger_journalentry_post_adjustment")
    data = _adjustment(
        account_0="mpesa_till", debit_0="25.00", account_1="unallocated_receipts", credit_1="24.00"
    )
    response = client_for(finance).post(url, data)
    assert response.status_code == 200
    assert ADJUSTMENT_UNBALANCED.format(debit="25.00", credit="24.00") in response.content.decode()
    assert not JournalEntry.objects.exists()


def test_agent_cannot_post_adjustments(client_for, agent):
    url = reverse("admin:ledger_journalentry_post_adjustment")
    data = _adjustment(account_0="mpesa_till", debit_0="5", account_1="bundle_sales", credit_1="5")
    assert client_for(agent).post(url, data).status_code == 403
    assert not JournalEntry.objects.exists()


# --- reports ----------------------------------------------------------------------------------
def test_trial_balance_as_of_a_day_totals_debits_equal_credits(client_for, finance, paid_order):
    books.post_delivery(order=paid_order)
    tb = trial_balance()
    balances = {r.account.key: r.balance for r in tb.rows}
    assert balances["stk_clearing_payhero"] == D("150") and balances["bundle_sales"] == D("-150")
    assert balances["bundles_owed"] == 0
    assert tb.total_debit == tb.total_credit == D("150")
    yesterday = trial_balance(as_of=timezone.now().astimezone(NAIROBI).date() - dt.timedelta(days=1))
    assert yesterday.total_debit == 0

    html = client_for(finance).get(reverse("admin:ledger_trial_balance")).content.decode()
    assert "Balanced: total debits 150.00 = total credits 150.00" in html


def test_daily_summary_counts_sales_by_channel_and_bundle_on_nairobi_days(finance, bundles):
    # Sales were the day's payment entries; they are now delivered bundles by the day they were paid.
    bundle = bundles["daily-2gb"]
    # 23:30 Nairobi on 1 March is 20:30 UTC: it belongs to 1 March, not 2 March.
    late = dt.datetime(2026, 3, 1, 23, 30, tzinfo=NAIROBI)
    delivered = {"status": OrderStatus.DELIVERED, "paid_at": late, "price": bundle.price}
    OrderFactory(bundle=bundle, gateway="payhero", **delivered)
    OrderFactory(bundle=bundle, channel="till", gateway="", **delivered)
    OrderFactory(bundle=bundle, status=OrderStatus.PAID, paid_at=late, price=bundle.price)
    OrderFactory(bundle=bundle, status=OrderStatus.REFUNDED, paid_at=late, price=bundle.price)

    summary = daily_summary(day=dt.date(2026, 3, 1))
    assert [(line.label, line.count, line.amount) for line in summary.by_channel] == [
        ("STK push", 1, bundle.price),
        ("Till (manual)", 1, bundle.price),
    ]
    assert [(line.label, line.count) for line in summary.by_bundle] == [(bundle.name, 2)]
    assert summary.total.amount == 2 * bundle.price
    assert (summary.pending.count, summary.pending.amount) == (1, bundle.price)
    assert daily_summary(day=dt.date(2026, 3, 2)).by_channel == []


def test_daily_summary_page_renders(client_for, finance, paid_order):
    url = reverse("admin:ledger_daily_summary")
    html = client_for(finance).get(url, {"day": timezone.now().astimezone(NAIROBI).date().isoformat()})
    assert html.status_code == 200 and "Sales by channel" in html.content.decode()
    assert client_for(finance).get(url, {"day": "not-a-date"}).status_code == 200  # falls back to today


# --- the refund action for the Order admin ----------------------------------------------------
def _call_refund_action(user, order, data=None):
    request = RequestFactory().post("/", data) if data is not None else RequestFactory().get("/")
    request.user = user
    request.session = {}
    request._messages = FallbackStorage(request)
    model_admin = admin.site._registry.get(Order) or admin.site._registry[JournalEntry]
    return order_refund_action(model_admin, request, object_id=str(order.pk))


def test_refund_action_confirms_then_refunds_with_the_reason(finance, paid_order):
    page = _call_refund_action(finance, paid_order)
    page.render()
    assert "Refund order" in page.content.decode()
    response = _call_refund_action(finance, paid_order, {"confirmed": "1", "reason": "Customer asked"})
    assert response.status_code == 302
    paid_order.refresh_from_db()
    assert paid_order.status == OrderStatus.REFUNDED
    assert paid_order.journal_entries.get(kind=EntryKind.REFUND).reason == "Customer asked"


def test_refund_action_is_refused_without_permission(agent, paid_order):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        _call_refund_action(agent, paid_order, {"confirmed": "1", "reason": "x"})
    paid_order.refresh_from_db()
    assert paid_order.status == OrderStatus.PAID


def test_journal_filters_by_kind_and_posted_date_range(client_for, finance):
    for day, kind in ((1, "till_receipt"), (2, "adjustment")):
        books.entry_post(
            kind=kind,
            lines=[("mpesa_till", D("5")), ("unallocated_receipts", D("-5"))],
            posted_at=dt.datetime(2026, 3, day, 12, 0, tzinfo=NAIROBI),
        )
    client = client_for(finance)
    url = reverse("admin:ledger_journalentry_changelist")
    html = client.get(url, {"posted_at_from_0": "2026-03-02", "posted_at_from_1": "00:00"}).content.decode()
    assert "JE-000002" in html and "JE-000001" not in html
    html = client.get(url, {"kind": "till_receipt"}).content.decode()
    assert "JE-000001" in html and "JE-000002" not in html


def test_journal_search_needs_no_join_so_each_field_is_one_indexed_lookup(entry, paid_order):
    from ledger.books.selectors import journal_search
    from ledger.models import JournalEntry

    found = journal_search(JournalEntry.objects.all(), f"  {paid_order.reference.lower()} ")
    assert entry in found
    assert "JOIN" not in str(found.query).upper()
    assert "JOIN" not in str(journal_search(JournalEntry.objects.all(), entry.number).query).upper()
    assert not journal_search(JournalEntry.objects.all(), "JE-999999").exists()
