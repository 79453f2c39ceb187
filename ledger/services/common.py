"""What every ledger service shares: messages, errors, row locks and the one order status setter.

Rules every service keeps:
- an order's status changes only through ``_set_status`` (ORDER_TRANSITIONS on the model says
  which moves exist), inside one transaction with its audit row;
- rows are locked Order first, then StkRequest (a stable order, so two writers never deadlock);
- no row lock is held while a gateway is called over HTTP;
- applying the same gateway result twice changes nothing the second time.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from console.kernel.exceptions import DomainError
from console.kernel.plausible import Implausible, clean_json, plausible_receipt
from console.kernel.redact import redact_json
from ledger.gateways import StatusQuery
from ledger.models import CallbackSource, Order, OrderStatus, StkRequest, StkStatus

# ---------------------------------------------------------------------------------------------
# Messages (tests and the API name these)
# ---------------------------------------------------------------------------------------------
BUNDLE_NOT_AVAILABLE = "That bundle is not on sale."
ORDER_NOT_RETRYABLE = "Only a failed or expired order can be sent again."
PROMPT_STILL_ANSWERABLE = (
    "The prompt sent {seconds} s ago may still reach the phone and be paid; "
    "a new prompt is offered {lifetime} s after it was sent."
)
PROMPT_STILL_WAITING = "A prompt is still waiting for the customer's PIN; wait for its answer."
SEND_UNKNOWN = (
    "M-Pesa did not answer when the prompt was sent ({reason}); it may still reach the phone. "
    "Wait for the payment or its answer."
)
ORDER_NOT_CANCELLABLE = "Only an order still waiting for payment can be cancelled."
ORDER_NOT_DELIVERABLE = "Only a paid order can be marked delivered."
ORDER_NOT_PENDING = "This order is not waiting for payment."
RECEIPT_ALREADY_USED = "M-Pesa receipt {receipt} already pays order {other}."
AMOUNT_MISMATCH = "Paid KES {paid} but the bundle costs KES {price}; the money is held as unallocated."
PAID_AFTER_CANCEL = "Paid KES {paid} after the order was cancelled; the money is held as unallocated."
NO_ANSWER = "No answer from M-Pesa within {minutes} minutes."
CALLBACK_UNKNOWN_ORDER = "No STK request or order matches this callback."
CALLBACK_SEVERAL_CANDIDATES = (
    "No STK request has this CheckoutRequestID and {count} prompts with an unknown answer fit its payer, "
    "amount and time: a person must decide."
)
CALLBACK_NOT_AUTHENTICATED = "Failed authentication: kept as an excerpt and never applied."
CALLBACK_CONFIRMING = "Waiting for the gateway's status query to confirm this success: {why}"
CALLBACK_NOT_CONFIRMED = (
    "The gateway's status query says this prompt {status} ({why}): the success was not applied."
)
CALLBACK_NEVER_CONFIRMED = (
    "The gateway never confirmed this success within {minutes} minutes: nothing was paid."
)
DISAGREEMENT = "Gateway confirmed the payment but the callback disagrees: {details}. Held for review."
PROMPT_ALREADY_WAITING = (
    "A payment prompt for {bundle} was sent to {phone} {seconds} s ago ({reference}); "
    "it is still waiting for the PIN. Wait for it, or retry that order if it fails."
)


class OrderError(DomainError):
    """This order cannot do that."""


class BundleNotAvailable(OrderError):
    """That bundle is not on sale."""


class InvalidOrderPhone(OrderError):
    """A phone number is not a Kenyan mobile number."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


class PromptAlreadyWaiting(OrderError):
    """The same prompt was sent moments ago (a double click or a second tap on Pay)."""

    def __init__(self, message: str, *, order: Order):
        super().__init__(message)
        self.order = order


class OrderNotRetryable(OrderError):
    """Only a failed or expired order can be sent again."""


class OrderNotCancellable(OrderError):
    """Only an order still waiting for payment can be cancelled."""


class OrderNotDeliverable(OrderError):
    """Only a paid order can be marked delivered."""


class StkSendFailed(OrderError):
    """The gateway did not take the payment prompt; the order is failed with the reason."""


class ReceiptAlreadyUsed(OrderError):
    """This M-Pesa receipt already pays another order."""


class OrderTransitionRefused(OrderError):
    """ORDER_TRANSITIONS has no move from this order's status to the one asked for."""


ORDER_TRANSITION_REFUSED = "{reference} is {current}: it cannot become {target}."

# Outcomes of applying a gateway's answer
APPLIED = "applied"
DUPLICATE = "duplicate"
PENDING = "pending"

# Prompts whose answer is still open: queued, or sent without an answer from the gateway.
OPEN_STK_STATUSES = (StkStatus.QUEUED, StkStatus.UNKNOWN)


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------
def _set_status(order: Order, status: OrderStatus, *, reason: str | None = None) -> None:
    """THE one place an order's status changes (the caller saves, in its transaction, with its
    audit row). Staying in the same status is no move; any other move must be in ORDER_TRANSITIONS,
    else OrderTransitionRefused. ``reason`` (when given) replaces the status reason."""
    if order.status != status and not order.can_become(status):
        raise OrderTransitionRefused(
            ORDER_TRANSITION_REFUSED.format(
                reference=order.reference,
                current=OrderStatus(order.status).label.lower(),
                target=OrderStatus(status).label.lower(),
            )
        )
    order.status = status
    if reason is not None:
        order.status_reason = reason[:255]


def _order_state(order: Order) -> dict:
    return {
        "status": order.status,
        "status_reason": order.status_reason,
        "mpesa_receipt": order.mpesa_receipt,
        "amount_paid": order.amount_paid,
    }


def _lock(order_id: int, stk_id: int | None = None) -> tuple[Order, StkRequest | None]:
    """Lock the order, then the STK request: always in this order. Only their rows: FOR UPDATE
    over the bundle join would also lock the bundle, which every new order referencing it must
    key-share at commit (a deferred foreign key), after taking the journal counter: a deadlock."""
    order = Order.objects.select_for_update(of=("self",)).select_related("bundle").get(pk=order_id)
    stk = StkRequest.objects.select_for_update().get(pk=stk_id) if stk_id else None
    return order, stk


def callback_url(gateway: str) -> str:
    """Where the gateway posts its answer. The simulator answers in Daraja's shape."""
    source = CallbackSource.PAYHERO if gateway == "payhero" else CallbackSource.DARAJA
    path = reverse(f"ledger:{source}_callback", kwargs={"token": settings.STK_CALLBACK_TOKEN})
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def is_latest_stk(stk: StkRequest) -> bool:
    """A late failure of an old prompt must not fail an order that has a newer prompt out."""
    return not StkRequest.objects.filter(order_id=stk.order_id, pk__gt=stk.pk).exists()


def _safe_raw(raw) -> dict:
    """A gateway request/answer as stored: secrets redacted, NUL and control characters gone."""
    if raw is None or raw == "":
        return {}
    value = raw if isinstance(raw, dict) else {"body": str(raw)}
    return redact_json(clean_json(value))


def _json_safe(value):
    return redact_json(clean_json(value))


def _check_receipt_free(receipt: str, order: Order) -> None:
    other = (
        Order.objects.filter(mpesa_receipt=receipt)
        .exclude(pk=order.pk)
        .values_list("reference", flat=True)
        .first()
    )
    if other:
        raise ReceiptAlreadyUsed(RECEIPT_ALREADY_USED.format(receipt=receipt, other=other))


def _receipt_or_none(value) -> str | None:
    try:
        return plausible_receipt(value) if value else None
    except Implausible:
        return None


def _status_query(stk: StkRequest) -> StatusQuery:
    return StatusQuery(
        checkout_request_id=stk.checkout_request_id,
        gateway_reference=stk.gateway_reference or None,
        order_reference=stk.order.reference,
        phone=stk.phone,
        amount=stk.amount,
        sent_at=stk.created_at,
    )
