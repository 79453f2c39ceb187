"""Admin for STK requests: read-only, one row per PIN prompt sent."""

from __future__ import annotations

from django.contrib import admin
from unfold.contrib.filters.admin import ChoicesDropdownFilter
from unfold.decorators import display
from unfold.paginator import InfinitePaginator

from console.kernel.admin_base import ModelAdmin, ReadOnlyAdminMixin, nairobi
from console.kernel.date_filters import NairobiRangeDateTimeFilter
from console.kernel.filters import filterset_list_filter
from console.kernel.phones import phone_display
from ledger import selectors
from ledger.admin.display import pretty_json
from ledger.models import StkRequest, StkStatus
from ledger.selectors import StkRequestFilter

STK_COLOURS = {
    StkStatus.QUEUED: "warning",
    StkStatus.UNKNOWN: "warning",
    StkStatus.SUCCESS: "success",
    StkStatus.FAILED: "danger",
    StkStatus.EXPIRED: "danger",
    StkStatus.ERROR: "danger",
}


class StkGatewayFilter(filterset_list_filter(StkRequestFilter, "gateway", title="gateway")):
    pass


class StkOutcomeFilter(filterset_list_filter(StkRequestFilter, "outcome", title="outcome")):
    """Failed in any way (failed, expired, error): what the dashboard's failure figures link to."""


@admin.register(StkRequest)
class StkRequestAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = [
        "display_checkout",
        "display_order",
        "gateway",
        "display_phone",
        "amount",
        "display_status",
        "result_code",
        "receipt",
        "query_count",
        "display_created",
    ]
    list_filter = [
        ("status", ChoicesDropdownFilter),
        StkOutcomeFilter,
        StkGatewayFilter,
        ("created_at", NairobiRangeDateTimeFilter),
    ]
    list_filter_submit = True
    list_select_related = ["order", "order__bundle"]
    search_fields = ["checkout_request_id", "gateway_reference", "order__reference", "receipt"]
    show_full_result_count = False
    paginator = InfinitePaginator
    list_per_page = 50
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "order",
                    "gateway",
                    "phone",
                    "amount",
                    "status",
                    "result_code",
                    "result_desc",
                    "receipt",
                ]
            },
        ),
        ("Gateway ids", {"fields": ["checkout_request_id", "merchant_request_id", "gateway_reference"]}),
        ("Chase", {"fields": ["query_count", "last_query_at", "next_query_at", "display_last_query_result"]}),
        ("Raw", {"fields": ["display_raw_request", "display_raw_response"]}),
        ("Record", {"fields": ["created_by", "created_at", "resolved_at"]}),
    ]
    readonly_fields = [f for _, opts in fieldsets for f in opts["fields"]]

    def get_queryset(self, request):
        return selectors.stk_requests_for_admin()

    @display(description="checkout request", ordering="checkout_request_id")
    def display_checkout(self, obj):
        return obj.checkout_request_id or f"#{obj.pk}"

    @display(description="order", ordering="order__reference")
    def display_order(self, obj):
        return obj.order.reference

    @display(description="phone")
    def display_phone(self, obj):
        return phone_display(obj.phone)

    @display(description="status", ordering="status", label=STK_COLOURS)
    def display_status(self, obj):
        return obj.status, obj.get_status_display()

    @display(description="created (Nairobi)", ordering="created_at")
    def display_created(self, obj):
        return nairobi(obj.created_at)

    @display(description="request sent")
    def display_raw_request(self, obj):
        return pretty_json(obj.raw_request)

    @display(description="gateway answer")
    def display_raw_response(self, obj):
        return pretty_json(obj.raw_response)

    @display(description="last status answer")
    def display_last_query_result(self, obj):
        return pretty_json(obj.last_query_result)
