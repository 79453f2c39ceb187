"""Till receipts: the suspense list, the till SMS paste and the statement upload button."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from unfold.decorators import action, display
from unfold.paginator import InfinitePaginator

from console.kernel.admin_base import ModelAdmin, ReadOnlyAdminMixin, money, nairobi
from console.kernel.date_filters import NairobiRangeDateTimeFilter
from console.kernel.exceptions import DomainError
from console.kernel.money import ksh
from console.kernel.phones import phone_display
from reconciliation.admin.common import AGE_COLOURS, age_text, form_page, right
from reconciliation.admin.statements import upload_statement_view
from reconciliation.filters import MATCHED_CHOICES, receipts_by_use, receipts_search
from reconciliation.forms import TillSmsForm
from reconciliation.models import (
    SettlementState,
    TillReceipt,
)
from reconciliation.services import receipts as receipt_services

MATCH_COLOURS = {"matched": "success", "unmatched": "warning"}


class MatchedFilter(admin.SimpleListFilter):
    title = "matched"
    parameter_name = "matched"

    def lookups(self, request, model_admin):
        return MATCHED_CHOICES

    def queryset(self, request, queryset):
        return receipts_by_use(queryset, self.value())


class TillReceiptAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = [
        "code",
        "display_amount",
        "display_paid",
        "display_age",
        "display_payer",
        "source",
        "display_matched",
        "display_unallocated",
    ]
    list_filter = [MatchedFilter, "source", "settlement", ("paid_at", NairobiRangeDateTimeFilter)]
    list_filter_submit = True
    empty_message = "No till receipts. Upload an M-Pesa statement or paste a till SMS."
    search_fields = ["code"]
    search_help_text = "Receipt code"
    paginator = InfinitePaginator
    show_full_result_count = False
    list_select_related = ["order"]
    readonly_fields = [
        "code",
        "amount",
        "paid_at",
        "display_payer",
        "source",
        "statement_import",
        "order",
        "settlement",
        "settlement_note",
        "display_unallocated",
        "created_at",
        "display_raw",
    ]
    exclude = ["raw"]
    actions_list = ["paste_till_sms", "upload_statement"]

    def get_search_results(self, request, queryset, search_term):
        return receipts_search(queryset, search_term), False

    @display(description="amount (KES)", ordering="amount")
    def display_amount(self, obj):
        return right(money(obj.amount))

    @display(description="paid (Nairobi)", ordering="paid_at")
    def display_paid(self, obj):
        return nairobi(obj.paid_at)

    @display(description="age in suspense", label=AGE_COLOURS)
    def display_age(self, obj):
        if obj.settlement == SettlementState.REVIEW:
            return "red", "STK settlement: review"
        if obj.settlement:
            return "done", "STK settlement"
        if obj.order_id:
            return "done", "matched"
        return age_text(obj.paid_at)

    @display(description="payer")
    def display_payer(self, obj):
        masked = phone_display(obj.payer_masked, empty="")
        return f"{obj.payer_name} {masked}".strip() or "—"

    @display(description="order", label=MATCH_COLOURS)
    def display_matched(self, obj):
        return ("matched", obj.order.reference) if obj.order_id else ("unmatched", "unmatched")

    @display(description="unallocated")
    def display_unallocated(self, obj):
        # What this receipt still holds in Unallocated receipts: all of it until it pays an order,
        # then whatever it paid beyond the order's price (the column sums to that account).
        if obj.order_id and obj.settlement:
            return "—"  # an STK payment's money: it sits in STK clearing, never in Unallocated
        left = obj.amount - obj.order.price if obj.order_id else obj.amount
        return f"{ksh(left)} unallocated" if left > 0 else "—"

    @display(description="as received")
    def display_raw(self, obj):
        return format_html('<pre class="whitespace-pre-wrap text-xs">{}</pre>', json.dumps(obj.raw, indent=2))

    @action(
        description="Paste till SMS",
        icon="sms",
        permissions=["reconciliation.import_statement"],
        url_path="paste-sms",
    )
    def paste_till_sms(self, request):
        form = TillSmsForm(request.POST or None)
        changelist = reverse("admin:reconciliation_tillreceipt_changelist")
        if request.method == "POST" and form.is_valid():
            try:
                counts = receipt_services.till_sms_import(text=form.cleaned_data["text"], user=request.user)
            except DomainError as exc:
                form.add_error("text", exc.message)
            else:
                messages.success(
                    request,
                    f"{counts['found']} till SMS read: {counts['new']} new, {counts['known']} already known.",
                )
                return redirect(changelist)
        return form_page(
            self,
            request,
            "Paste till SMS",
            intro="Merchant-side messages from the till phone become receipts (nothing is recorded twice).",
            question="Till SMS",
            form=form,
            confirm_label="Record receipts",
            cancel_url=changelist,
        )

    @action(
        description="Import statement",
        icon="upload_file",
        permissions=["reconciliation.import_statement"],
        url_path="upload-statement",
    )
    def upload_statement(self, request):
        return upload_statement_view(self, request)


admin.site.register(TillReceipt, TillReceiptAdmin)
