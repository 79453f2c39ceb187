"""Admin for orders: the list, an order's page and its buttons.

Thin: every button calls one service in ledger.services and reports the outcome. Nobody edits or
deletes orders here; their status changes only through the buttons below, and a button shows on an
order's page only when the order can make its move (Order.can_become, the model's one table).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RelatedDropdownFilter
from unfold.decorators import action, display
from unfold.paginator import InfinitePaginator
from unfold.templatetags import unfold_list

from console.kernel.admin_base import ModelAdmin, money, nairobi
from console.kernel.confirm import admin_page, confirm_page, confirmed
from console.kernel.date_filters import NairobiRangeDateTimeFilter
from console.kernel.exceptions import DomainError
from console.kernel.filters import filterset_list_filter
from console.kernel.links import customer_link
from console.kernel.phones import phone_display, whatsapp_link
from ledger import selectors, services
from ledger.admin.books import order_refund_action
from ledger.admin.display import pretty_json
from ledger.forms import CancelForm, StkPushForm
from ledger.models import Channel, Order, OrderStatus, StkRequest, StkStatus
from ledger.selectors import OrderFilter

# unfold's list builds every column header again for each row (items_for_result calls
# result_headers per row for the cells' small-screen labels): at 50 orders a page that is half the
# list's time. A changelist that says so builds its headers once and hands the same list to each row.
_result_headers = unfold_list.result_headers


def _headers_once(cl):
    if not getattr(cl, "headers_once", False):
        return _result_headers(cl)
    if not hasattr(cl, "_headers"):
        cl._headers = list(_result_headers(cl))
    return iter(cl._headers)


unfold_list.result_headers = _headers_once

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

PROMPT_SENT = "Prompt sent to {phone} for {reference} (KES {price}). The order updates when M-Pesa answers."
PROMPT_FAILED = "{reference}: M-Pesa could not send the prompt: {reason}"
PROMPT_UNKNOWN = "{reference}: {reason} Do not send another prompt before {lifetime} s have passed."
CANCELLED = "{reference} cancelled."

# What an agent does next with an order, by its status (the list's "next step" column).
NEXT_STEPS = {
    OrderStatus.PAID: ("deliver", "Deliver"),
    OrderStatus.PENDING_PAYMENT: ("wait", "Wait for payment"),
    OrderStatus.FAILED: ("retry", "Send prompt again if asked"),
    OrderStatus.EXPIRED: ("retry", "Send prompt again if asked"),
    OrderStatus.NEEDS_REVIEW: ("review", "Finance reviews"),
}
NEXT_STEP_COLOURS = {"deliver": "success", "wait": "info", "retry": "warning", "review": "warning"}
NO_NEXT_STEP = ("none", "—")

# The buttons on an order's page, each shown only for an order that can make its move.
DETAIL_ACTION_ALLOWED = {
    "mark_delivered": lambda order: order.can_become(OrderStatus.DELIVERED),
    "refund": lambda order: order.can_become(OrderStatus.REFUNDED),
    "cancel_order": services.order_cancellable,
    # Never while an earlier prompt can still be answered (see order_retry_allowed).
    "retry": lambda order: services.order_retry_allowed(order)[0],
}


def _orders_table(orders) -> dict:
    return {
        "headers": ["Reference", "Bundle", "Price (KES)", "Recipient", "Status", "Receipt"],
        "rows": [
            [
                o.reference,
                str(o.bundle),
                money(o.price),
                phone_display(o.recipient_msisdn),
                o.get_status_display(),
                o.mpesa_receipt or "—",
            ]
            for o in orders
        ],
    }


class OrderGatewayFilter(filterset_list_filter(OrderFilter, "gateway", title="gateway")):
    pass


class SaleFilter(filterset_list_filter(OrderFilter, "sale", title="sale")):
    """Orders that count as sales (paid or delivered): what the dashboard's sales figures link to."""


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
        return pretty_json(obj.raw_request)

    @display(description="gateway answer")
    def display_raw_response(self, obj):
        return pretty_json(obj.raw_response)


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
        "display_next_step",
        "mpesa_receipt",
        "display_created",
    ]
    list_filter = [
        ("status", ChoicesDropdownFilter),
        SaleFilter,
        ("channel", ChoicesDropdownFilter),
        ("bundle", RelatedDropdownFilter),
        OrderGatewayFilter,
        ("created_at", NairobiRangeDateTimeFilter),
        ("paid_at", NairobiRangeDateTimeFilter),
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

    def get_changelist(self, request, **kwargs):
        return type("OrderChangeList", (super().get_changelist(request, **kwargs),), {"headers_once": True})

    def get_actions_detail(self, request, object_id):
        actions = super().get_actions_detail(request, object_id)
        order = self.get_object(request, unquote(str(object_id))) if object_id else None
        prefix = f"{self.opts.app_label}_{self.opts.model_name}_"
        return [
            a
            for a in actions
            if order is not None
            and DETAIL_ACTION_ALLOWED.get(a.action_name.removeprefix(prefix), bool)(order)
        ]

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
        return format_html('<span class="block text-right tabular-nums">{}</span>', money(obj.price))

    @display(description="payer", ordering="payer_msisdn")
    def display_payer(self, obj):
        return customer_link(obj.payer_msisdn, phone_display(obj.payer_msisdn))

    @display(description="recipient", ordering="recipient_msisdn")
    def display_recipient(self, obj):
        return customer_link(obj.recipient_msisdn, phone_display(obj.recipient_msisdn))

    @display(description="status", ordering="status", label=STATUS_COLOURS)
    def display_status(self, obj):
        return obj.status, obj.get_status_display()

    @display(description="next step", label=NEXT_STEP_COLOURS)
    def display_next_step(self, obj):
        step = NEXT_STEPS.get(obj.status, NO_NEXT_STEP)
        if step[0] == "deliver" and not obj.can_become(OrderStatus.DELIVERED):
            return NO_NEXT_STEP
        if step[0] == "retry" and obj.channel != Channel.STK:
            return NO_NEXT_STEP  # a till order has no prompt to send again
        return step

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
                checkout = services.stk_checkout(
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
                self._report_send(request, checkout.order, failed=checkout.failed, unknown=checkout.unknown)
                return redirect("admin:ledger_order_change", checkout.order.pk)
        return admin_page(
            self,
            request,
            "admin/ledger/order/stk_push_form.html",
            "New STK push",
            form=form,
            cancel_url=changelist,
        )

    def _report_send(self, request, order, *, failed: str = "", unknown: bool = False):
        if failed:
            messages.error(request, PROMPT_FAILED.format(reference=order.reference, reason=failed))
        elif unknown:
            text = PROMPT_UNKNOWN.format(
                reference=order.reference, reason=order.status_reason, lifetime=settings.STK_PROMPT_LIFETIME
            )
            messages.warning(request, text)
        else:
            phone = phone_display(order.payer_msisdn)
            messages.success(
                request, PROMPT_SENT.format(phone=phone, reference=order.reference, price=order.price)
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
        if confirmed(request):
            try:
                stk = services.order_retry(order=order, created_by=request.user)
            except services.StkSendFailed as exc:
                self._report_send(request, order, failed=exc.message)
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                order.refresh_from_db()
                self._report_send(request, order, unknown=stk.status == StkStatus.UNKNOWN)
            return redirect(change_url)
        return confirm_page(
            self,
            request,
            title=f"Send the prompt again for {order.reference}",
            question=f"Send a new M-Pesa prompt to {phone_display(order.payer_msisdn)}?",
            tables=[_orders_table([order])],
            intro=f"Last attempt: {order.status_reason or order.get_status_display()}.",
            confirm_label="Send prompt",
            cancel_url=change_url,
        )

    # ---- Cancel ----------------------------------------------------------------------------
    @action(description="Cancel order", icon="cancel", permissions=["ledger.cancel_order"], url_path="cancel")
    def cancel_order(self, request, object_id):
        order = get_object_or_404(Order.objects.select_related("bundle"), pk=object_id)
        change_url = reverse("admin:ledger_order_change", args=[order.pk])
        if not services.order_cancellable(order):
            messages.error(request, services.ORDER_NOT_CANCELLABLE)
            return redirect(change_url)
        form = CancelForm(request.POST or None)
        if confirmed(request) and form.is_valid():
            try:
                services.order_cancel(order=order, actor=request.user, reason=form.cleaned_data["reason"])
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, CANCELLED.format(reference=order.reference))
            return redirect(change_url)
        return confirm_page(
            self,
            request,
            title=f"Cancel {order.reference}",
            question=f"Cancel {order.reference}?",
            tables=[_orders_table([order])],
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
        if not order.can_become(OrderStatus.DELIVERED):
            messages.error(request, f"{order.reference}: {services.ORDER_NOT_DELIVERABLE}")
            return redirect(request.headers.get("referer") or change_url)
        if confirmed(request):
            return self._deliver(request, [order])
        return self._confirm_delivery(request, [order], cancel_url=change_url)

    def has_mark_delivered_permission(self, request, obj=None):
        return request.user.has_perm("ledger.mark_delivered")

    @action(description="Mark selected orders delivered", permissions=["mark_delivered"])
    def mark_delivered_selected(self, request, queryset):
        orders = list(queryset.select_related("bundle"))
        if confirmed(request):
            return self._deliver(request, orders)
        return self._confirm_delivery(
            request,
            orders,
            cancel_url=reverse("admin:ledger_order_changelist"),
            action_name="mark_delivered_selected",
        )

    def _confirm_delivery(self, request, orders, *, cancel_url, action_name=None):
        paid = sum(1 for o in orders if o.can_become(OrderStatus.DELIVERED))
        return confirm_page(
            self,
            request,
            title="Mark delivered",
            question=f"Have you loaded the bundle for {paid} paid order(s)?",
            intro="Only paid orders are delivered; others in the list are skipped and listed after.",
            tables=[_orders_table(orders)],
            action_name=action_name,
            selected=[o.pk for o in orders],
            confirm_label="Mark delivered",
            cancel_url=cancel_url,
        )

    def _deliver(self, request, orders):
        result = services.orders_mark_delivered(orders=orders, actor=request.user)
        if result.delivered:
            messages.success(
                request, f"{len(result.delivered)} order(s) delivered. Copy the WhatsApp reply below."
            )
        return admin_page(
            self,
            request,
            "admin/ledger/order/delivered.html",
            "Delivered",
            delivered=[
                (o, reply, phone_display(o.payer_msisdn), whatsapp_link(o.payer_msisdn, reply))
                for o, reply in result.delivered
            ],
            skipped=result.skipped,
            back_url=reverse("admin:ledger_order_changelist"),
        )
