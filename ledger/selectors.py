"""Reads the API, the admin and the tasks share."""

from __future__ import annotations

import re

from django.db.models import Q, QuerySet
from django_filters import ChoiceFilter, FilterSet

from catalog.models import Bundle
from console.kernel.phones import phone_display, try_normalise_msisdn
from ledger.books.selectors import PAID_PENDING, SOLD
from ledger.gateways import GATEWAY_NAMES, describe_result
from ledger.models import CallbackLog, Order, OrderStatus, StkRequest, StkStatus

# ---------------------------------------------------------------------------------------------
# Filters: one definition each, used by the admin's list filters and the dashboard's figures
# ---------------------------------------------------------------------------------------------
STK_FAILED = Q(status__in=[StkStatus.FAILED, StkStatus.EXPIRED, StkStatus.ERROR])


# Fixed choices for list filters on free-text columns: a filter that read its choices from the
# data would run SELECT DISTINCT over the whole table on every list page.
GATEWAY_LABELS = {"simulator": "Simulator", "payhero": "PayHero", "daraja": "Daraja"}
GATEWAY_CHOICES = [(name, GATEWAY_LABELS.get(name, name.title())) for name in GATEWAY_NAMES]


class OrderFilter(FilterSet):
    gateway = ChoiceFilter(choices=GATEWAY_CHOICES)
    sale = ChoiceFilter(
        choices=[("yes", "Sales (delivered)"), ("pending", "Paid, delivery pending")], method="filter_sale"
    )

    class Meta:
        model = Order
        fields: list[str] = []

    def filter_sale(self, queryset, name, value):
        return queryset.filter({"yes": SOLD, "pending": PAID_PENDING}.get(value, Q()))


class StkRequestFilter(FilterSet):
    gateway = ChoiceFilter(choices=GATEWAY_CHOICES)
    outcome = ChoiceFilter(choices=[("failed", "Failed, expired or error")], method="filter_outcome")

    class Meta:
        model = StkRequest
        fields: list[str] = []

    def filter_outcome(self, queryset, name, value):
        return queryset.filter(STK_FAILED) if value == "failed" else queryset


def bundle_for_sale(key) -> Bundle | None:
    """An active bundle by slug or id (the storefront sends either)."""
    if isinstance(key, bool) or key in (None, ""):
        return None
    qs = Bundle.objects.active()
    if isinstance(key, int) or (isinstance(key, str) and key.strip().isdigit()):
        return qs.filter(pk=int(key)).first()
    if isinstance(key, str):
        return qs.filter(slug=key.strip()).first()
    return None


_REFERENCE_RE = re.compile(r"^TXN-[A-Z0-9]{8}$")


def order_by_reference(reference: str) -> Order | None:
    reference = (reference or "").strip().upper()
    if not _REFERENCE_RE.match(reference):
        return None  # also keeps NUL and other junk away from the database
    return Order.objects.select_related("bundle").filter(reference=reference).first()


# Plain words for the customer's status page, by order status.
STATUS_MESSAGES = {
    OrderStatus.PENDING_PAYMENT: "Check your phone and enter your M-Pesa PIN.",
    OrderStatus.PAID: "Paid",
    OrderStatus.DELIVERED: "Paid and delivered",
    OrderStatus.NEEDS_REVIEW: "Payment received; we are checking it",
    OrderStatus.EXPIRED: "The request expired",
    OrderStatus.CANCELLED: "Cancelled",
    OrderStatus.REFUNDED: "Refunded",
}


def order_customer_message(order: Order) -> str:
    """Plain words for the customer's status page."""
    if order.status == OrderStatus.FAILED:
        latest = order.stk_requests.order_by("-pk").first()
        if latest and latest.result_code:
            return describe_result(latest.result_code, latest.result_desc)
        return order.status_reason or "Payment failed"
    return STATUS_MESSAGES.get(order.status, order.get_status_display())


def payer_hint(msisdn: str) -> str:
    """The paying number as the status page names it, middle digits hidden: ``0712 *** 678``
    (whoever holds a reference learns no one's full number)."""
    shown = phone_display(msisdn, empty="")
    return f"{shown[:4]} *** {shown[-3:]}" if len(shown) == 12 else ""


def order_status_payload(order: Order) -> dict:
    return {
        "reference": order.reference,
        "payer": payer_hint(order.payer_msisdn),
        "status": order.status,
        "status_label": order.get_status_display(),
        "message": order_customer_message(order),
        "amount": str(order.price),
        "bundle": order.bundle.name,
        "receipt": order.mpesa_receipt,
    }


def orders_for_admin() -> QuerySet[Order]:
    return Order.objects.select_related("bundle")


def order_search_filter(term: str) -> Q | None:
    """A phone typed in any form matches the stored 2547… numbers; codes match case-insensitively."""
    term = (term or "").replace("\x00", "").strip()
    if not term:
        return None
    msisdn = try_normalise_msisdn(term)
    q = Q(reference=term.upper()) | Q(mpesa_receipt=term.upper().replace(" ", ""))
    if msisdn:
        q |= Q(payer_msisdn=msisdn) | Q(recipient_msisdn=msisdn)
    return q


def stk_requests_for_admin() -> QuerySet[StkRequest]:
    return StkRequest.objects.select_related("order", "order__bundle")


def callback_logs_for_admin() -> QuerySet[CallbackLog]:
    return CallbackLog.objects.select_related("stk_request")
