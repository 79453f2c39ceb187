"""Admin for orders, STK requests and the callback inbox.

Thin: every button calls one service in ledger.services and reports the outcome. Nobody edits or
deletes orders here; their status changes only through the actions below. Everything stored from
outside (raw gateway requests and answers, callback paths, headers and bodies) is shown through
console.kernel.redact, so a secret stored before redaction existed is still never displayed.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RangeDateTimeFilter, RelatedDropdownFilter
from unfold.decorators import action, display
from unfold.paginator import InfinitePaginator

from console.kernel.admin_base import ModelAdmin, ReadOnlyAdminMixin, money, nairobi
from console.kernel.exceptions import DomainError
from console.kernel.links import customer_link
from console.kernel.redact import redact_json_strict, redact_text_strict
from ledger import selectors, services
from ledger.admin.books import order_refund_action
from ledger.forms import CancelForm, StkPushForm
from ledger.models import (
    SALE_STATUSES,
    CallbackLog,
    CallbackOutcome,
    Order,
    OrderStatus,
    StkRequest,
    StkStatus,
)

STATUS_COLOURS = {
    OrderStatus.PENDING_PAYMENT: "warning",
    OrderStatus.PAID: "info",
    OrderStatus.DELIVERED: "success",
    OrderStatus.NEEDS_REVIEW: "warning",
    OrderStatus.FAILED: "danger",
    OrderStatus.EXPIRED: "danger",
    OrderStatus.CANCELLED: "danger",
    OrderStatus.REFUNDED: "info",
}
STK_COLOURS = {
    StkStatus.QUEUED: "warning",
    StkStatus.UNKNOWN: "warning",
    StkStatus.SUCCESS: "success",
    StkStatus.FAILED: "danger",
    StkStatus.EXPIRED: "danger",
    StkStatus.ERROR: "danger",
}
OUTCOME_COLOURS = {
    CallbackOutcome.RECEIVED: "info",
    CallbackOutcome.APPLIED: "success",
    CallbackOutcome.DUPLICATE: "info",
    CallbackOutcome.UNKNOWN_ORDER: "warning",
    CallbackOutcome.CONFIRMING: "warning",
    CallbackOutcome.UNCONFIRMED: "danger",
    CallbackOutcome.REJECTED: "danger",
    CallbackOutcome.ERROR: "danger",
}

PROMPT_SENT = "Prompt sent to {phone} for {reference} (KES {price}). The order updates when M-Pesa answers."
PROMPT_FAILED = "{reference}: M-Pesa could not send the prompt: {reason}"
PROMPT_UNKNOWN = "{reference}: {reason} Do not send another prompt before {lifetime} s have passed."
CANCELLED = "{reference} cancelled."
REPROCESSED = "Callback #{pk} re-processed: {outcome}."
NOT_AUTHENTICATED = "Failed authentication (wrong token / IP not allowed): kept as an excerpt, never applied."
NOT_REPROCESSED = "Callback #{pk} not re-processed. " + NOT_AUTHENTICATED
AUTH_COLOURS = {"passed": "success", "failed": "danger"}


def _pretty_json(value) -> str:
    """A stored JSON value (or JSON text) indented for reading, with every secret redacted."""
    if isinstance(value, str):
        value = redact_text_strict(value)
        try:
            value = json.loads(value)
        except ValueError:
            return format_html('<pre class="whitespace-pre-wrap text-xs">{}</pre>', value)
    value = redact_json_strict(value)
    text = (
        json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False) if value not in ({}, None) else "—"
    )
    return format_html('<pre class="whitespace-pre-wrap text-xs max-w-2xl">{}</pre>', text)


def _page(model_admin, request, template, title, **context):
    return TemplateResponse(
        request,
        f"admin/ledger/order/{template}",
        {**model_admin.admin_site.each_context(request), "title": title, "opts": model_admin.opts, **context},
    )


def _orders_table(orders) -> dict:
    return {
        "headers": ["Reference", "Bundle", "Price (KES)", "Recipient", "Status", "Receipt"],
        "rows": [
            [
                o.reference,
                str(o.bundle),
                f"{o.price:,.2f}",
                services.local_phone(o.recipient_msisdn),
                o.get_status_display(),
                o.mpesa_receipt or "—",
            ]
            for o in orders
        ],
    }


# ---------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------
class SaleFilter(admin.SimpleListFilter):
    """Orders that count as sales (paid or delivered): what the dashboard's sales figures link to."""

    title = "sale"
    parameter_name = "sale"

    def lookups(self, request, model_admin):
        return [("yes", "Sales (paid or delivered)")]

    def queryset(self, request, queryset):
        return queryset.filter(status__in=SALE_STATUSES) if self.value() == "yes" else queryset


class StkRequestInline(TabularInline):
    model = StkRequest
    extra = 0
    can_delete = False
    show_change_link = True
    tab = True
    fields = [
        "created_at",
        "gateway",
        "status",
        "result_code",
        "result_desc",
        "receipt",
        "display_raw_request",
        "display_raw_response",
    ]
    readonly_fields = fields
    ordering = ["-pk"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @display(description="request sent")
    def display_raw_request(self, obj):
        return _pretty_json(obj.raw_request)

    @display(description="gateway answer")
    def display_raw_response(self, obj):
        return _pretty_json(obj.raw_response)


@admin.register(Order)
class OrderAdmin(ModelAdmin):
    list_display = [
        "reference",
        "display_bundle",
        "display_price",
        "display_payer",
        "display_recipient",
        "channel",
        "display_status",
        "gateway",
        "mpesa_receipt",
        "display_created",
    ]
    list_filter = [
        ("status", ChoicesDropdownFilter),
        SaleFilter,
        ("channel", ChoicesDropdownFilter),
        ("bundle", RelatedDropdownFilter),
        "gateway",
        ("created_at", RangeDateTimeFilter),
        ("paid_at", RangeDateTimeFilter),
    ]
    list_filter_submit = True
    list_select_related = ["bundle"]
    search_fields = ["reference"]  # shows the box; get_search_results does the real matching
    search_help_text = "Reference, M-Pesa receipt or phone number in any form"
    show_full_result_count = False
    paginator = InfinitePaginator
    list_per_page = 50
    inlines = [StkRequestInline]
    fieldsets = [
        (None, {"fields": ["reference", "bundle", "price", "channel", "gateway", "status", "status_reason"]}),
        ("Customer", {"fields": ["display_payer", "display_recipient"]}),
        ("Payment", {"fields": ["mpesa_receipt", "amount_paid", "paid_at"]}),
        ("Delivery", {"fields": ["delivered_at", "delivered_by"]}),
        ("Record", {"fields": ["created_by", "created_at", "updated_at"]}),
    ]
    readonly_fields = [f for _, opts in fieldsets for f in opts["fields"]]
    actions = ["mark_delivered_selected"]
    actions_list = ["new_stk_push", "find_anything"]
    actions_row = ["mark_delivered", "retry"]
    actions_detail = ["mark_delivered", "retry", "cancel_order", "refund"]

    refund = order_refund_action

    def get_queryset(self, request):
        return selectors.orders_for_admin()

    def get_actions_detail(self, request, object_id):
        # "Send prompt again" only where a new prompt is allowed now (never while one can be answered).
        actions = super().get_actions_detail(request, object_id)
        order = self.get_object(request, unquote(str(object_id))) if object_id else None
        if order is None or not services.order_retry_allowed(order)[0]:
            actions = [a for a in actions if a.action_name != "ledger_order_retry"]
        return actions

    def get_search_results(self, request, queryset, search_term):
        q = selectors.order_search_filter(search_term)
        if q is None:
            return queryset, False
        return queryset.filter(q), False

    def has_add_permission(self, request):
        return False  # orders are created by "New STK push", the storefront or a verified claim

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    # ---- columns ---------------------------------------------------------------------------
    @display(description="bundle", ordering="bundle__name")
    def display_bundle(self, obj):
        return obj.bundle.name

    @display(description="price (KES)", ordering="price")
    def display_price(self, obj):
        return format_html('<span class="block text-right tabular-nums">{}</span>', f"{obj.price:,.2f}")

    @display(description="payer", ordering="payer_msisdn")
    def display_payer(self, obj):
        return customer_link(obj.payer_msisdn, services.local_phone(obj.payer_msisdn))

    @display(description="recipient", ordering="recipient_msisdn")
    def display_recipient(self, obj):
        return customer_link(obj.recipient_msisdn, services.local_phone(obj.recipient_msisdn))

    @display(description="status", ordering="status", label=STATUS_COLOURS)
    def display_status(self, obj):
        return obj.status, obj.get_status_display()

    @display(description="created (Nairobi)", ordering="created_at")
    def display_created(self, obj):
        return nairobi(obj.created_at)

    @action(description="Find anything", icon="search", permissions=["ledger.view_order"], url_path="find")
    def find_anything(self, request):
        return redirect("console_find")

    # ---- New STK push ----------------------------------------------------------------------
    @action(
        description="New STK push", icon="phone_iphone", permissions=["ledger.send_stk"], url_path="stk-push"
    )
    def new_stk_push(self, request):
        form = StkPushForm(request.POST or None)
        changelist = reverse("admin:ledger_order_changelist")
        if request.method == "POST" and form.is_valid():
            try:
                order = services.order_create(
                    bundle=form.cleaned_data["bundle"],
                    payer_msisdn=form.cleaned_data["phone_number"],
                    recipient_msisdn=form.cleaned_data["recipient_phone"] or None,
                    created_by=request.user,
                )
            except services.PromptAlreadyWaiting as exc:
                messages.warning(request, exc.message)
                return redirect("admin:ledger_order_change", exc.order.pk)
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self._send(request, order, lambda: services.stk_send(order=order, created_by=request.user))
                return redirect("admin:ledger_order_change", order.pk)
        return _page(self, request, "stk_push_form.html", "New STK push", form=form, cancel_url=changelist)

    def _send(self, request, order, send):
        try:
            stk = send()
        except services.StkSendFailed as exc:
            messages.error(request, PROMPT_FAILED.format(reference=order.reference, reason=exc.message))
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            if getattr(stk, "status", None) == StkStatus.UNKNOWN:
                order.refresh_from_db()
                text = PROMPT_UNKNOWN.format(
                    reference=order.reference,
                    reason=order.status_reason,
                    lifetime=settings.STK_PROMPT_LIFETIME,
                )
                messages.warning(request, text)
                return
            messages.success(
                request,
                PROMPT_SENT.format(
                    phone=services.local_phone(order.payer_msisdn),
                    reference=order.reference,
                    price=order.price,
                ),
            )

    # ---- Retry -----------------------------------------------------------------------------
    @action(description="Send prompt again", icon="replay", permissions=["ledger.send_stk"], url_path="retry")
    def retry(self, request, object_id):
        order = get_object_or_404(Order.objects.select_related("bundle"), pk=object_id)
        change_url = reverse("admin:ledger_order_change", args=[order.pk])
        allowed, why = services.order_retry_allowed(order)
        if not allowed:
            messages.error(request, why)
            return redirect(change_url)
        if request.method == "POST" and request.POST.get("confirmed"):
            self._send(request, order, lambda: services.order_retry(order=order, created_by=request.user))
            return redirect(change_url)
        return _page(
            self,
            request,
            "confirm.html",
            f"Send the prompt again for {order.reference}",
            question=f"Send a new M-Pesa prompt to {services.local_phone(order.payer_msisdn)}?",
            summary=_orders_table([order]),
            intro=f"Last attempt: {order.status_reason or order.get_status_display()}.",
            confirm_label="Send prompt",
            cancel_url=change_url,
        )

    # ---- Cancel ----------------------------------------------------------------------------
    @action(description="Cancel order", icon="cancel", permissions=["ledger.cancel_order"], url_path="cancel")
    def cancel_order(self, request, object_id):
        order = get_object_or_404(Order.objects.select_related("bundle"), pk=object_id)
        change_url = reverse("admin:ledger_order_change", args=[order.pk])
        if order.status != OrderStatus.PENDING_PAYMENT:
            messages.error(request, services.ORDER_NOT_CANCELLABLE)
            return redirect(change_url)
        form = CancelForm(request.POST or None)
        if request.method == "POST" and request.POST.get("confirmed") and form.is_valid():
            try:
                services.order_cancel(order=order, actor=request.user, reason=form.cleaned_data["reason"])
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, CANCELLED.format(reference=order.reference))
            return redirect(change_url)
        return _page(
            self,
            request,
            "confirm.html",
            f"Cancel {order.reference}",
            question=f"Cancel {order.reference}?",
            summary=_orders_table([order]),
            intro="If the customer still pays the prompt, the money is kept and the order goes to review.",
            form=form,
            confirm_label="Cancel order",
            confirm_variant="danger",
            cancel_url=change_url,
        )

    # ---- Mark delivered (row, detail and bulk) ---------------------------------------------
    @action(
        description="Mark delivered",
        icon="task_alt",
        permissions=["ledger.mark_delivered"],
        url_path="deliver",
    )
    def mark_delivered(self, request, object_id):
        order = get_object_or_404(Order.objects.select_related("bundle"), pk=object_id)
        change_url = reverse("admin:ledger_order_change", args=[order.pk])
        if order.status != OrderStatus.PAID:
            messages.error(request, f"{order.reference}: {services.ORDER_NOT_DELIVERABLE}")
            return redirect(request.headers.get("referer") or change_url)
        if request.method == "POST" and request.POST.get("confirmed"):
            return self._deliver(request, [order])
        return self._confirm_delivery(request, [order], cancel_url=change_url)

    def has_mark_delivered_permission(self, request, obj=None):
        return request.user.has_perm("ledger.mark_delivered")

    @action(description="Mark selected orders delivered", permissions=["mark_delivered"])
    def mark_delivered_selected(self, request, queryset):
        orders = list(queryset.select_related("bundle"))
        if request.POST.get("confirmed"):
            return self._deliver(request, orders)
        return self._confirm_delivery(
            request,
            orders,
            cancel_url=reverse("admin:ledger_order_changelist"),
            action_name="mark_delivered_selected",
        )

    def _confirm_delivery(self, request, orders, *, cancel_url, action_name=None):
        paid = sum(1 for o in orders if o.status == OrderStatus.PAID)
        return _page(
            self,
            request,
            "confirm.html",
            "Mark delivered",
            question=f"Have you loaded the bundle for {paid} paid order(s)?",
            intro="Only paid orders are delivered; others in the list are skipped and listed after.",
            summary=_orders_table(orders),
            orders=orders,
            action_name=action_name,
            action_checkbox_name=ACTION_CHECKBOX_NAME,
            confirm_label="Mark delivered",
            cancel_url=cancel_url,
        )

    def _deliver(self, request, orders):
        result = services.orders_mark_delivered(orders=orders, actor=request.user)
        if result.delivered:
            messages.success(
                request, f"{len(result.delivered)} order(s) delivered. Copy the WhatsApp reply below."
            )
        return _page(
            self,
            request,
            "delivered.html",
            "Delivered",
            delivered=[(o, reply, services.local_phone(o.recipient_msisdn)) for o, reply in result.delivered],
            skipped=result.skipped,
            back_url=reverse("admin:ledger_order_changelist"),
        )


# ---------------------------------------------------------------------------------------------
# STK requests (read-only)
# ---------------------------------------------------------------------------------------------
class StkOutcomeFilter(admin.SimpleListFilter):
    """Failed in any way (failed, expired, error): what the dashboard's failure figures link to."""

    title = "outcome"
    parameter_name = "outcome"

    def lookups(self, request, model_admin):
        return [("failed", "Failed, expired or error")]

    def queryset(self, request, queryset):
        if self.value() == "failed":
            return queryset.filter(status__in=[StkStatus.FAILED, StkStatus.EXPIRED, StkStatus.ERROR])
        return queryset


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
        "gateway",
        ("created_at", RangeDateTimeFilter),
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
        return services.local_phone(obj.phone)

    @display(description="status", ordering="status", label=STK_COLOURS)
    def display_status(self, obj):
        return obj.status, obj.get_status_display()

    @display(description="created (Nairobi)", ordering="created_at")
    def display_created(self, obj):
        return nairobi(obj.created_at)

    @display(description="request sent")
    def display_raw_request(self, obj):
        return _pretty_json(obj.raw_request)

    @display(description="gateway answer")
    def display_raw_response(self, obj):
        return _pretty_json(obj.raw_response)

    @display(description="last status answer")
    def display_last_query_result(self, obj):
        return _pretty_json(obj.last_query_result)


# ---------------------------------------------------------------------------------------------
# Callback inbox (read-only, with Re-process)
# ---------------------------------------------------------------------------------------------
@admin.register(CallbackLog)
class CallbackLogAdmin(ReadOnlyAdminMixin, ModelAdmin):
    empty_message = (
        "No callbacks yet. Gateways post to /api/callbacks/<gateway>/<STK_CALLBACK_TOKEN>/; each one lands "
        "here before it is applied."
    )
    list_display = [
        "id",
        "display_received",
        "source",
        "display_outcome",
        "display_authenticated",
        "checkout_request_id",
        "receipt",
        "display_amount",
        "display_size_short",
        "display_detail",
    ]  # source IP and attempts are on the callback's page: twelve columns made every row tall
    list_filter = [
        ("outcome", ChoicesDropdownFilter),
        ("source", ChoicesDropdownFilter),
        "authenticated",
        ("received_at", RangeDateTimeFilter),
    ]
    list_filter_submit = True
    list_select_related = ["stk_request"]
    search_fields = ["checkout_request_id", "receipt"]
    show_full_result_count = False
    paginator = InfinitePaginator
    list_per_page = 50
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "source",
                    "received_at",
                    "outcome",
                    "display_detail_full",
                    "display_authentication",
                    "attempts",
                    "processed_at",
                    "next_attempt_at",
                ]
            },
        ),
        ("Matched", {"fields": ["checkout_request_id", "receipt", "amount", "stk_request"]}),
        ("Confirmation by status query", {"fields": ["display_confirmation"]}),
        (
            "Request",
            {"fields": ["remote_ip", "display_path", "display_headers", "display_size", "display_body"]},
        ),
    ]
    readonly_fields = [f for _, opts in fieldsets for f in opts["fields"]]
    actions = ["reprocess_selected"]
    actions_detail = ["reprocess"]

    def get_queryset(self, request):
        return selectors.callback_logs_for_admin()

    # Raw gateway bodies hold customers' phone numbers and names: superusers only, whatever
    # permissions a group is given.
    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def get_actions_detail(self, request, object_id):
        # A callback that failed authentication can never be applied: no button to try.
        actions = super().get_actions_detail(request, object_id)
        log = self.get_object(request, unquote(str(object_id))) if object_id else None
        if log is None or not log.authenticated:
            actions = [a for a in actions if a.action_name != "ledger_callbacklog_reprocess"]
        return actions

    # ---- columns and fields ----------------------------------------------------------------
    @display(description="received (Nairobi)", ordering="received_at")
    def display_received(self, obj):
        return nairobi(obj.received_at)

    @display(description="outcome", ordering="outcome", label=OUTCOME_COLOURS)
    def display_outcome(self, obj):
        return obj.outcome, obj.get_outcome_display()

    @display(description="authentication", ordering="authenticated", label=AUTH_COLOURS)
    def display_authenticated(self, obj):
        return ("passed", "Passed") if obj.authenticated else ("failed", "Failed")

    @display(description="authentication")
    def display_authentication(self, obj):
        if obj.authenticated:
            return "Passed (callback token and source IP)."
        return format_html('<strong class="text-red-600 dark:text-red-500">{}</strong>', NOT_AUTHENTICATED)

    @display(description="amount (KES)", ordering="amount")
    def display_amount(self, obj):
        return money(obj.amount)

    @display(description="detail")
    def display_detail(self, obj):
        detail = redact_text_strict(obj.detail)
        return (detail[:80] + "…") if len(detail) > 80 else detail

    @display(description="detail")
    def display_detail_full(self, obj):
        return redact_text_strict(obj.detail) or "—"

    @display(description="path")
    def display_path(self, obj):
        return redact_text_strict(obj.path) or "—"

    @display(description="body size", ordering="body_size")
    def display_size_short(self, obj):
        return f"{obj.body_size:,} bytes" + (" (excerpt)" if obj.body_truncated else "")

    @display(description="body size")
    def display_size(self, obj):
        size = f"{obj.body_size:,} bytes"
        if obj.body_truncated:
            return f"{size} (truncated excerpt: first {len(obj.body.encode('utf-8')):,} bytes kept)"
        return size

    @display(description="body")
    def display_body(self, obj):
        if obj.body_truncated:
            return format_html(
                '<p class="text-xs mb-2">Truncated excerpt: the rest was not kept.</p>{}',
                _pretty_json(obj.body),
            )
        return _pretty_json(obj.body)

    @display(description="headers")
    def display_headers(self, obj):
        return _pretty_json(obj.headers)

    @display(description="callback vs gateway")
    def display_confirmation(self, obj):
        return _confirmation_table(obj.confirmation)

    # ---- Re-process (detail and bulk) --------------------------------------------------------
    @action(
        description="Re-process", icon="sync", permissions=["ledger.reprocess_callback"], url_path="reprocess"
    )
    def reprocess(self, request, object_id):
        log = get_object_or_404(CallbackLog, pk=object_id)
        change_url = reverse("admin:ledger_callbacklog_change", args=[log.pk])
        if not log.authenticated:
            # Refused here as well as in the service: a crafted POST changes nothing either.
            messages.error(request, NOT_REPROCESSED.format(pk=log.pk))
            return redirect(change_url)
        if request.method == "POST" and request.POST.get("confirmed"):
            outcome = services.callback_reprocess(log=log, actor=request.user)
            messages.info(request, REPROCESSED.format(pk=log.pk, outcome=CallbackOutcome(outcome).label))
            return redirect(change_url)
        return self._confirm_reprocess(request, [log], cancel_url=change_url)

    def has_reprocess_callback_permission(self, request, obj=None):
        return request.user.has_perm("ledger.reprocess_callback")

    @action(description="Re-process selected callbacks", permissions=["reprocess_callback"])
    def reprocess_selected(self, request, queryset):
        selected = list(queryset.order_by("received_at", "pk"))
        logs = [log for log in selected if log.authenticated]
        for log in selected:
            if not log.authenticated:
                messages.warning(request, NOT_REPROCESSED.format(pk=log.pk))
        if not logs:
            return None
        if not request.POST.get("confirmed"):
            return self._confirm_reprocess(
                request,
                logs,
                cancel_url=reverse("admin:ledger_callbacklog_changelist"),
                action_name="reprocess_selected",
            )
        for log in logs:
            outcome = services.callback_reprocess(log=log, actor=request.user)
            messages.info(request, REPROCESSED.format(pk=log.pk, outcome=CallbackOutcome(outcome).label))
        return None

    def _confirm_reprocess(self, request, logs, *, cancel_url, action_name=None):
        # Re-processing can mark an order paid and post to the books: say so before doing it.
        return _page(
            self,
            request,
            "confirm.html",
            "Re-process callbacks",
            question=f"Apply {len(logs)} callback(s) again?",
            intro=(
                "A callback for an order still waiting is applied as if it had just arrived: a success is "
                "first confirmed with the gateway's status query, then the order may become paid and the "
                "payment is booked. One already applied changes nothing."
            ),
            summary={
                "headers": ["#", "Received (Nairobi)", "Source", "Outcome", "Checkout request", "Receipt"],
                "rows": [
                    [
                        log.pk,
                        nairobi(log.received_at),
                        log.get_source_display(),
                        log.get_outcome_display(),
                        log.checkout_request_id or "—",
                        log.receipt or "—",
                    ]
                    for log in logs
                ],
            },
            orders=logs,
            action_name=action_name,
            action_checkbox_name=ACTION_CHECKBOX_NAME,
            confirm_label="Re-process",
            cancel_url=cancel_url,
        )


_CONFIRMATION_ROWS = [
    ("status", "Status"),
    ("result_code", "Result code"),
    ("amount", "Amount (KES)"),
    ("receipt", "Receipt"),
    ("phone", "Phone"),
    ("description", "Description"),
]


def _confirmation_table(confirmation) -> str:
    """The callback's figures beside the gateway's status answer, then any disagreement.

    Expects {"callback": {...}, "gateway": {...}, "disagreements": [...]} (ledger.services); any
    other shape is shown as JSON. Every value is redacted.
    """
    if not confirmation:
        return "— (no status query was needed or made)"
    confirmation = redact_json_strict(confirmation)
    callback, gateway = confirmation.get("callback"), confirmation.get("gateway")
    if not isinstance(callback, dict) or not isinstance(gateway, dict):
        return _pretty_json(confirmation)

    def cell(value) -> str:
        return "—" if value in (None, "") else str(value)

    rows = format_html_join(
        "",
        '<tr class="border-t border-base-200 dark:border-base-800"><th class="pr-4 py-1 text-left '
        'font-medium">{}</th><td class="pr-4 py-1">{}</td><td class="py-1">{}</td></tr>',
        ((label, cell(callback.get(key)), cell(gateway.get(key))) for key, label in _CONFIRMATION_ROWS),
    )
    disagreements = confirmation.get("disagreements") or []
    notes = format_html_join(
        "", '<li class="text-red-600 dark:text-red-500">{}</li>', ((d,) for d in disagreements)
    )
    return format_html(
        '<table class="text-sm" data-testid="confirmation"><thead><tr><th></th>'
        '<th class="pr-4 text-left">Callback says</th><th class="text-left">Gateway answered</th></tr>'
        "</thead><tbody>{}</tbody></table>{}",
        rows,
        format_html('<ul class="mt-2 list-disc pl-5">{}</ul>', notes) if disagreements else "",
    )
