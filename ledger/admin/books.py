"""Admin for accounts and journal entries, and the Order admin's refund action.

Posted entries and postings are read-only for everyone, superusers included: the only ways to
change the books are the services behind the buttons here (adjustment, reversal, refund).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery, Sum
from django.shortcuts import get_object_or_404, redirect
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter
from unfold.decorators import action, display
from unfold.paginator import InfinitePaginator

from console.kernel.admin_base import ModelAdmin, ReadOnlyAdminMixin, nairobi
from console.kernel.confirm import admin_page, confirm_page, confirmed
from console.kernel.date_filters import NairobiRangeDateTimeFilter, range_params
from console.kernel.exceptions import DomainError
from console.kernel.filters import filterset_list_filter
from console.kernel.money import money
from console.kernel.tables import figures_table
from ledger import books, services
from ledger.books import selectors
from ledger.books.forms import AdjustmentForm, AsOfForm, DayForm, ReasonForm
from ledger.books.selectors import JournalEntryFilter
from ledger.models import Account, JournalEntry, Order, OrderStatus, Posting

REVERSE_PAYMENT_NOTE = (
    " This is the payment of order {reference}: the order then needs review and cannot be delivered;"
    " for a till payment its claim is reopened and its receipt goes back to the suspense list."
)
REVERSED_ORDER_REVIEW = " Order {reference} now needs review."


def _money(value) -> str:
    return money(value, empty="")


# ---------------------------------------------------------------------------------------------
# Accounts and the trial balance
# ---------------------------------------------------------------------------------------------
@admin.register(Account)
class AccountAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["code", "name", "kind", "key", "display_balance"]
    search_fields = ["code", "name", "key"]
    actions_list = ["trial_balance"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(balance=Sum("postings__amount"))

    @display(description="Balance (Dr + / Cr −)", ordering="balance")
    def display_balance(self, obj):
        return _money(obj.balance or 0)

    # The chart is created by a migration; services find accounts by key, so keys never change.

    def get_urls(self):
        return [
            path(
                "trial-balance/",
                self.admin_site.admin_view(self.trial_balance_view),
                name="ledger_trial_balance",
            ),
            *super().get_urls(),
        ]

    @action(description="Trial balance", icon="balance", permissions=["ledger.view_account"])
    def trial_balance(self, request):
        return redirect("admin:ledger_trial_balance")

    def trial_balance_view(self, request):
        if not request.user.has_perm("ledger.view_account"):
            raise PermissionDenied
        form = AsOfForm(request.GET or None)
        tb = selectors.trial_balance(as_of=form.as_of_or_today())
        if not form.is_bound:
            form = AsOfForm(initial={"as_of": tb.as_of})
        rows = [
            [r.account.code, r.account.name, r.account.get_kind_display(), r.debit, r.credit] for r in tb.rows
        ]
        total = format_html("<strong>{}</strong>", "Total")
        rows.append([total, "", "", tb.total_debit, tb.total_credit])
        return admin_page(
            self,
            request,
            "admin/ledger/trial_balance.html",
            f"Trial balance as of {tb.as_of:%d %b %Y}",
            form=form,
            tb=tb,
            table=figures_table(
                ["Code", "Account", "Kind", "Debit (KES)", "Credit (KES)"],
                rows,
                amounts=(3, 4),
                testid="trial-balance",
            ),
            intro="Balances at the end of the chosen day, Nairobi time.",
        )


# ---------------------------------------------------------------------------------------------
# The journal
# ---------------------------------------------------------------------------------------------
class PostingInline(ReadOnlyAdminMixin, TabularInline):
    model = Posting
    fields = ["account", "display_debit", "display_credit"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    @display(description="Debit")
    def display_debit(self, obj):
        return _money(obj.debit)

    @display(description="Credit")
    def display_credit(self, obj):
        return _money(obj.credit)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account")


class EntryChannelFilter(filterset_list_filter(JournalEntryFilter, "channel", title="channel")):
    pass


class AfterCloseFilter(filterset_list_filter(JournalEntryFilter, "after_close", title="booked after close")):
    """Entries whose money moved on a closed day and were booked on the next open day."""


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = [
        "number",
        "posted_at",
        "display_value_date",
        "kind",
        "display_amount",
        "order",
        "receipt_code",
        "channel",
        "memo",
        "display_reversal",
    ]
    list_display_links = ["number"]
    # Exact matches on indexed columns: fast on millions of entries.
    search_fields = ["=number", "=order__reference", "=receipt_code"]
    search_help_text = "Entry number (JE-000123), order reference (TXN-…) or M-Pesa receipt."
    list_filter = [
        ("kind", ChoicesDropdownFilter),
        ("posted_at", NairobiRangeDateTimeFilter),
        EntryChannelFilter,
        AfterCloseFilter,
    ]
    list_filter_submit = True
    list_select_related = ["order", "reverses", "reversed_by"]
    show_full_result_count = False
    paginator = InfinitePaginator
    list_per_page = 50
    inlines = [PostingInline]
    fields = [
        "number",
        "kind",
        "posted_at",
        "display_value_date",
        "memo",
        "reason",
        "order",
        "receipt_code",
        "channel",
        "created_by",
        "reverses",
        "display_reversal",
        "idempotency_key",
    ]
    readonly_fields = fields
    actions_list = ["post_adjustment", "daily_summary", "trial_balance"]
    actions_detail = ["reverse_entry"]

    @display(description="value date (Nairobi)", ordering="value_at")
    def display_value_date(self, obj):
        if not obj.after_close:
            return nairobi(obj.value_time)
        return format_html("{} <span class='text-red-600'>(after close)</span>", nairobi(obj.value_at))

    def get_queryset(self, request):
        # A correlated subquery per shown row, not a GROUP BY over the whole journal.
        debits = (
            Posting.objects.filter(entry=OuterRef("pk"), amount__gt=0)
            .order_by()
            .values("entry")
            .annotate(total=Sum("amount"))
            .values("total")
        )
        return super().get_queryset(request).annotate(debits=Subquery(debits))

    def get_search_results(self, request, queryset, search_term):
        # Exact, indexed matches (selectors.journal_search): fast on millions of entries.
        return selectors.journal_search(queryset, search_term), False

    @display(description="Amount (KES)")
    def display_amount(self, obj):
        return _money(obj.debits)

    @display(description="Reversal")
    def display_reversal(self, obj):
        reversal = getattr(obj, "reversed_by", None) if obj.pk else None
        if reversal:
            return format_html("reversed by {}", reversal.number)
        if obj.reverses_id:
            return format_html("reverses {}", obj.reverses.number)
        return "—"

    # Nobody, not even a superuser, adds, edits or deletes an entry here.

    def get_urls(self):
        return [
            path(
                "daily-summary/",
                self.admin_site.admin_view(self.daily_summary_view),
                name="ledger_daily_summary",
            ),
            *super().get_urls(),
        ]

    @action(description="Daily summary", icon="today", permissions=["ledger.view_journalentry"])
    def daily_summary(self, request):
        return redirect("admin:ledger_daily_summary")

    @action(description="Trial balance", icon="balance", permissions=["ledger.view_account"])
    def trial_balance(self, request):
        return redirect("admin:ledger_trial_balance")

    def daily_summary_view(self, request):
        if not request.user.has_perm("ledger.view_journalentry"):
            raise PermissionDenied
        form = DayForm(request.GET or None)
        summary = selectors.daily_summary(day=form.day_or_today())
        if not form.is_bound:
            form = DayForm(initial={"day": summary.day})

        def table(lines, first, testid):
            rows = [[line.label, line.count, line.amount] for line in lines]
            return figures_table(
                [first, "Count", "Amount (KES)"], rows, counts=(1,), amounts=(2,), testid=testid
            )

        by_channel = table([*summary.by_channel, summary.total], "Channel", "sales-by-channel")
        by_channel["title"] = "Sales by channel"
        by_channel["rows"][-1][0]["value"] = format_html("<strong>{}</strong>", "Total")
        start, end = summary.sales.start, summary.sales.end
        orders = reverse("admin:ledger_order_changelist")
        return admin_page(
            self,
            request,
            "admin/ledger/daily_summary.html",
            f"Daily summary for {summary.day:%a %d %b %Y}",
            form=form,
            summary=summary,
            sales_url=f"{orders}?{urlencode({'sale': 'yes', **range_params('paid_at', start, end)})}",
            pending_url=f"{orders}?{urlencode({'sale': 'pending', **range_params('paid_at', start, end)})}",
            by_channel=by_channel,
            by_bundle={**table(summary.by_bundle, "Bundle", "sales-by-bundle"), "title": "Sales by bundle"},
            movements={
                **table([summary.deliveries, summary.refunds], "Movement", "movements"),
                "title": "Other movements (entries booked this day)",
            },
            intro="Sales are delivered bundles, counted on the day they were paid (Nairobi time); "
            "orders paid that day and not delivered yet are shown beside them, not in them.",
        )

    @action(description="Post adjustment", icon="edit_note", permissions=["ledger.post_adjustment"])
    def post_adjustment(self, request):
        form = AdjustmentForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                entry = books.adjustment_post(
                    lines=form.cleaned_data["lines"],
                    reason=form.cleaned_data["reason"],
                    memo=form.cleaned_data["memo"],
                    user=request.user,
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Adjustment {entry.number} posted.")
                return redirect("admin:ledger_journalentry_change", entry.pk)
        return admin_page(
            self,
            request,
            "admin/ledger/adjustment_form.html",
            "Post an adjustment",
            form=form,
            cancel_url=reverse("admin:ledger_journalentry_changelist"),
            intro="Any accounts; debits must equal credits. The entry can never be edited afterwards, "
            "only reversed.",
        )

    @action(description="Reverse entry", icon="undo", permissions=["ledger.reverse_entry"])
    def reverse_entry(self, request, object_id):
        entry = get_object_or_404(JournalEntry, pk=object_id)
        change_url = reverse("admin:ledger_journalentry_change", args=[entry.pk])
        already = JournalEntry.objects.filter(reverses=entry).first()
        if already:
            messages.warning(request, f"{entry.number} is already reversed by {already.number}.")
            return redirect(change_url)
        refusal = books.payment_reversal_refusal(entry)
        if refusal:
            messages.error(request, refusal)  # said before a reason is typed, not after
            return redirect(change_url)
        form = ReasonForm(request.POST if confirmed(request) else None)
        if confirmed(request) and form.is_valid():
            try:
                reversal = services.entry_reverse(
                    entry=entry, reason=form.cleaned_data["reason"], user=request.user
                )
            except DomainError as exc:
                messages.error(request, exc.message)
                return redirect(change_url)
            done = f"{entry.number} reversed by {reversal.number}."
            if books.pays_order(entry):
                done += REVERSED_ORDER_REVIEW.format(reference=entry.order.reference)
            messages.success(request, done)
            return redirect("admin:ledger_journalentry_change", reversal.pk)
        postings = entry.postings.select_related("account")
        return confirm_page(
            self,
            request,
            title=f"Reverse {entry.number}",
            question=f"Post the mirror entry of {entry.number} ({entry.get_kind_display()})?",
            tables=[
                {
                    "headers": ["Account", "Debit (KES)", "Credit (KES)"],
                    "rows": [[str(p.account), _money(p.credit), _money(p.debit)] for p in postings],
                }
            ],
            intro="The reversal swaps every debit and credit below. Both entries stay in the books, "
            "linked to each other."
            + (
                REVERSE_PAYMENT_NOTE.format(reference=entry.order.reference)
                if books.pays_order(entry)
                else ""
            ),
            form=form,
            confirm_label="Post reversal",
            confirm_variant="danger",
            cancel_url=change_url,
        )


def _order_url(order) -> str:
    try:
        return reverse("admin:ledger_order_change", args=[order.pk])
    except NoReverseMatch:  # the Order admin is not registered (yet): show its entries instead
        return reverse("admin:ledger_journalentry_changelist") + f"?q={order.reference}"


# ---------------------------------------------------------------------------------------------
# Refunds: an action for the Order admin (ledger/admin/orders.py lists it in its actions)
# ---------------------------------------------------------------------------------------------
@action(
    description="Refund", icon="currency_exchange", permissions=["ledger.refund_order"], url_path="refund"
)
def order_refund_action(model_admin, request, object_id):
    """Confirmation page with a reason, then `services.order_refund`. Use as an actions_detail or
    actions_row entry: `refund = order_refund_action` on the Order ModelAdmin."""
    order = get_object_or_404(Order.objects.select_related("bundle"), pk=object_id)
    change_url = _order_url(order)
    if order.status not in (OrderStatus.PAID, OrderStatus.DELIVERED):
        messages.error(request, books.ORDER_NOT_REFUNDABLE.format(status=order.get_status_display().lower()))
        return redirect(change_url)
    form = ReasonForm(request.POST if confirmed(request) else None)
    if confirmed(request) and form.is_valid():
        try:
            entry = services.order_refund(order=order, reason=form.cleaned_data["reason"], user=request.user)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{order.reference} refunded ({entry.number}).")
        return redirect(change_url)
    amount = order.amount_paid or order.price
    delivered = order.status == OrderStatus.DELIVERED
    return confirm_page(
        model_admin,
        request,
        title=f"Refund {order.reference}",
        question=f"Refund KES {_money(amount)} for {order.reference}?",
        tables=[
            {
                "headers": ["", ""],
                "rows": [
                    ["Bundle", str(order.bundle)],
                    ["Status", order.get_status_display()],
                    ["Paid by", order.get_channel_display()],
                    ["Books", "Dr Sales refunds" if delivered else "Dr Bundles owed"],
                ],
            }
        ],
        intro="The order becomes refunded and a refund entry is posted. Send the money back to the "
        "customer through M-Pesa yourself; this records it.",
        form=form,
        confirm_label="Refund order",
        confirm_variant="danger",
        cancel_url=change_url,
    )
