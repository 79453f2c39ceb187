"""Orders and STK pushes: every write that changes an order or an STK request lives here.

Rules every function keeps:
- an order's status changes only in this module, inside one transaction with its audit row;
- rows are locked Order first, then StkRequest (a stable order, so two writers never deadlock);
- no row lock is held while a gateway is called over HTTP;
- applying the same gateway result twice changes nothing the second time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from catalog.models import Bundle
from console.kernel.audit import AuditAction, audit_record
from console.kernel.exceptions import DomainError
from console.kernel.phones import InvalidPhoneNumber, local_msisdn, normalise_msisdn
from console.kernel.plausible import Implausible, clean_json, clean_text, plausible_receipt
from console.kernel.redact import redact_json
from ledger import books
from ledger.gateways import (
    CallbackParseError,
    GatewayError,
    GatewayUnavailable,
    StatusQuery,
    StkPushRequest,
    StkResult,
    describe_result,
    get_gateway,
)
from ledger.gateways.daraja import parse_daraja_callback
from ledger.gateways.payhero import parse_payhero_callback
from ledger.models import (
    CallbackLog,
    CallbackOutcome,
    CallbackSource,
    Channel,
    Order,
    OrderStatus,
    StkRequest,
    StkStatus,
)

logger = logging.getLogger(__name__)

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


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------
def _order_state(order: Order) -> dict:
    return {
        "status": order.status,
        "status_reason": order.status_reason,
        "mpesa_receipt": order.mpesa_receipt,
        "amount_paid": order.amount_paid,
    }


def _lock(order_id: int, stk_id: int | None = None) -> tuple[Order, StkRequest | None]:
    """Lock the order, then the STK request: always in this order."""
    order = Order.objects.select_for_update().select_related("bundle").get(pk=order_id)
    stk = StkRequest.objects.select_for_update().get(pk=stk_id) if stk_id else None
    return order, stk


def local_phone(msisdn: str) -> str:
    """``254712345678`` -> ``0712345678``: how customers write their own number."""
    return local_msisdn(msisdn)


def callback_url(gateway: str) -> str:
    """Where the gateway posts its answer. The simulator answers in Daraja's shape."""
    source = CallbackSource.PAYHERO if gateway == "payhero" else CallbackSource.DARAJA
    path = reverse(f"ledger:{source}_callback", kwargs={"token": settings.STK_CALLBACK_TOKEN})
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def is_latest_stk(stk: StkRequest) -> bool:
    """A late failure of an old prompt must not fail an order that has a newer prompt out."""
    return not StkRequest.objects.filter(order_id=stk.order_id, pk__gt=stk.pk).exists()


# ---------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------
@transaction.atomic
def order_create(
    *,
    bundle: Bundle,
    payer_msisdn: str,
    recipient_msisdn: str | None = None,
    channel: str = Channel.STK,
    gateway: str | None = None,
    created_by=None,
) -> Order:
    """Create an order for `bundle` at its catalogue price (never a price from the client).

    Phones in any Kenyan form are stored as 2547…/2541…; recipient defaults to the payer.
    Atomic. Raises BundleNotAvailable or InvalidOrderPhone (with `field`) and writes nothing;
    raises PromptAlreadyWaiting (with the waiting `order`) when the same STK order was placed
    within STK_DUPLICATE_WINDOW seconds, so a double click never sends two PIN prompts.
    """
    if not bundle.active:
        raise BundleNotAvailable(BUNDLE_NOT_AVAILABLE)
    try:
        payer = normalise_msisdn(payer_msisdn)
    except InvalidPhoneNumber as exc:
        raise InvalidOrderPhone(str(exc), field="phone_number")
    try:
        recipient = normalise_msisdn(recipient_msisdn) if recipient_msisdn else payer
    except InvalidPhoneNumber as exc:
        raise InvalidOrderPhone(str(exc), field="recipient_phone")
    if channel == Channel.STK:
        waiting = _prompt_waiting(bundle=bundle, payer=payer, recipient=recipient)
        if waiting:
            seconds = int((timezone.now() - waiting.created_at).total_seconds())
            raise PromptAlreadyWaiting(
                PROMPT_ALREADY_WAITING.format(
                    bundle=bundle, phone=local_phone(payer), seconds=seconds, reference=waiting.reference
                ),
                order=waiting,
            )
    order = Order.objects.create(
        bundle=bundle,
        price=bundle.price,
        payer_msisdn=payer,
        recipient_msisdn=recipient,
        channel=channel,
        gateway=(gateway or settings.PAYMENT_GATEWAY) if channel == Channel.STK else "",
        created_by=created_by if getattr(created_by, "pk", None) else None,
    )
    audit_record(
        actor=created_by,
        action="order.create",
        obj=order,
        after={"bundle": bundle.slug, "price": order.price, "payer": payer, "recipient": recipient},
    )
    return order


def _prompt_waiting(*, bundle: Bundle, payer: str, recipient: str) -> Order | None:
    """An identical STK order placed within STK_DUPLICATE_WINDOW seconds and still unpaid."""
    since = timezone.now() - timedelta(seconds=settings.STK_DUPLICATE_WINDOW)
    return (
        Order.objects.filter(
            channel=Channel.STK,
            bundle=bundle,
            payer_msisdn=payer,
            recipient_msisdn=recipient,
            status=OrderStatus.PENDING_PAYMENT,
            created_at__gte=since,
        )
        .order_by("-created_at")
        .first()
    )


def stk_send(*, order: Order, created_by=None) -> StkRequest:
    """Send the M-Pesa PIN prompt for a pending order.

    Three short steps, none holding a lock during HTTP: (1) atomically record a queued
    StkRequest; (2) call the gateway; (3) atomically store its answer (secrets redacted, text
    cleaned). A gateway refusal fails the order with the gateway's readable reason and raises
    StkSendFailed. A send whose fate is unknown (timeout or lost connection after sending) is
    *unknown*, not failed: the order keeps waiting, since the customer may still pay, and a
    callback or till receipt that arrives is matched to it (see callback_process). With the
    simulator, the simulated callback is queued as a django-q2 task once the answer is committed.
    """
    with transaction.atomic():
        locked, _ = _lock(order.pk)
        if locked.status != OrderStatus.PENDING_PAYMENT:
            raise OrderError(ORDER_NOT_PENDING)
        gateway_name = locked.gateway or settings.PAYMENT_GATEWAY
        stk = StkRequest.objects.create(
            order=locked,
            gateway=gateway_name,
            phone=locked.payer_msisdn,
            amount=locked.price,
            created_by=created_by if getattr(created_by, "pk", None) else None,
        )
        audit_record(actor=created_by, action="stk.send", obj=stk, after={"order": locked.reference})

    try:
        gateway = get_gateway(gateway_name)
        accepted = gateway.initiate_stk(
            StkPushRequest(
                order_reference=locked.reference,
                amount=int(locked.price),
                phone=locked.payer_msisdn,
                account_reference=locked.reference,
                description=f"{locked.bundle.data_label} data"[:13],
                callback_url=callback_url(gateway_name),
            )
        )
    except GatewayUnavailable as exc:
        if exc.ambiguous:
            _stk_send_unknown(stk_id=stk.pk, reason=exc.message, raw=exc.raw, actor=created_by)
            return StkRequest.objects.get(pk=stk.pk)
        _stk_send_failed(stk_id=stk.pk, reason=exc.message, raw=exc.raw, actor=created_by)
        raise StkSendFailed(clean_text(exc.message))
    except (GatewayError, ValueError) as exc:
        reason = getattr(exc, "message", None) or str(exc)
        _stk_send_failed(stk_id=stk.pk, reason=reason, raw=getattr(exc, "raw", None), actor=created_by)
        raise StkSendFailed(clean_text(reason))

    with transaction.atomic():
        stk = StkRequest.objects.select_for_update().get(pk=stk.pk)
        stk.checkout_request_id = clean_text(accepted.checkout_request_id, 64) or None
        stk.merchant_request_id = clean_text(accepted.merchant_request_id, 64)
        stk.gateway_reference = clean_text(accepted.gateway_reference, 64)
        stk.raw_request = _safe_raw(accepted.raw_request)
        stk.raw_response = _safe_raw(accepted.raw_response)
        stk.next_query_at = timezone.now() + timedelta(seconds=settings.STK_CHASE_AFTER)
        stk.save()
        if gateway_name == "simulator":
            transaction.on_commit(lambda: _queue_simulated_callback(stk.pk))
    return stk


def _safe_raw(raw) -> dict:
    """A gateway request/answer as stored: secrets redacted, NUL and control characters gone."""
    if raw is None or raw == "":
        return {}
    value = raw if isinstance(raw, dict) else {"body": str(raw)}
    return redact_json(clean_json(value))


@transaction.atomic
def _stk_send_failed(*, stk_id: int, reason: str, raw, actor) -> None:
    stk = StkRequest.objects.get(pk=stk_id)
    order, stk = _lock(stk.order_id, stk_id)
    before = _order_state(order)
    reason = clean_text(reason)
    stk.status = StkStatus.ERROR
    stk.result_desc = reason
    stk.raw_response = _safe_raw(raw)
    stk.resolved_at = timezone.now()
    stk.save()
    if order.status == OrderStatus.PENDING_PAYMENT:
        order.status = OrderStatus.FAILED
        order.status_reason = reason
        order.save(update_fields=["status", "status_reason", "updated_at"])
    audit_record(actor=actor, action="stk.send_failed", obj=order, before=before, after=_order_state(order))


@transaction.atomic
def _stk_send_unknown(*, stk_id: int, reason: str, raw, actor) -> None:
    """The send may have reached M-Pesa: keep the order waiting and remember why."""
    stk = StkRequest.objects.get(pk=stk_id)
    order, stk = _lock(stk.order_id, stk_id)
    before = _order_state(order)
    stk.status = StkStatus.UNKNOWN
    stk.result_desc = clean_text(reason)
    stk.raw_response = _safe_raw(raw)
    # Chased like a queued prompt (a gateway id may still come by callback), then expired.
    stk.next_query_at = timezone.now() + timedelta(seconds=settings.STK_CHASE_AFTER)
    stk.save()
    if order.status == OrderStatus.PENDING_PAYMENT:
        order.status_reason = clean_text(SEND_UNKNOWN.format(reason=reason))
        order.save(update_fields=["status_reason", "updated_at"])
    audit_record(actor=actor, action="stk.send_unknown", obj=order, before=before, after=_order_state(order))


def _queue_simulated_callback(stk_id: int) -> None:
    from django_q.tasks import async_task

    async_task("ledger.tasks.simulator_callback_deliver", stk_id, task_name=f"simulate-stk-{stk_id}")


def order_retry_allowed(order: Order, *, now=None) -> tuple[bool, str]:
    """Whether a new prompt may be sent for ``order``, and if not, why.

    Never while an earlier prompt can still be answered: a queued prompt waits for its answer;
    an unknown send waits STK_PROMPT_LIFETIME seconds. A failed or expired order may be sent again.
    """
    if order.channel != Channel.STK:
        return False, ORDER_NOT_RETRYABLE
    if order.status in (OrderStatus.FAILED, OrderStatus.EXPIRED):
        return True, ""
    if order.status != OrderStatus.PENDING_PAYMENT:
        return False, ORDER_NOT_RETRYABLE
    latest = StkRequest.objects.filter(order=order).order_by("-pk").first()
    if latest is None:
        return False, ORDER_NOT_RETRYABLE
    if latest.status == StkStatus.QUEUED:
        return False, PROMPT_STILL_WAITING
    if latest.status == StkStatus.UNKNOWN:
        age = int(((now or timezone.now()) - latest.created_at).total_seconds())
        if age < settings.STK_PROMPT_LIFETIME:
            return False, PROMPT_STILL_ANSWERABLE.format(seconds=age, lifetime=settings.STK_PROMPT_LIFETIME)
        return True, ""
    return latest.status in (StkStatus.FAILED, StkStatus.ERROR, StkStatus.EXPIRED), ORDER_NOT_RETRYABLE


def order_retry(*, order: Order, created_by=None) -> StkRequest:
    """Send a new prompt (a new StkRequest on the same order) when order_retry_allowed says so.

    Raises OrderNotRetryable with the reason, or StkSendFailed like stk_send.
    """
    with transaction.atomic():
        locked, _ = _lock(order.pk)
        allowed, why = order_retry_allowed(locked)
        if not allowed:
            raise OrderNotRetryable(why)
        before = _order_state(locked)
        locked.status = OrderStatus.PENDING_PAYMENT
        locked.status_reason = ""
        locked.save(update_fields=["status", "status_reason", "updated_at"])
        audit_record(
            actor=created_by, action="order.retry", obj=locked, before=before, after=_order_state(locked)
        )
    return stk_send(order=locked, created_by=created_by)


@transaction.atomic
def order_cancel(*, order: Order, actor, reason: str = "") -> Order:
    """Cancel an order still waiting for payment. A payment arriving later is held for review."""
    locked, _ = _lock(order.pk)
    if locked.status != OrderStatus.PENDING_PAYMENT:
        raise OrderNotCancellable(ORDER_NOT_CANCELLABLE)
    before = _order_state(locked)
    locked.status = OrderStatus.CANCELLED
    locked.status_reason = (reason or "Cancelled by staff")[:255]
    locked.save(update_fields=["status", "status_reason", "updated_at"])
    audit_record(
        actor=actor,
        action="order.cancel",
        obj=locked,
        before=before,
        after=_order_state(locked),
        reason=reason,
    )
    return locked


def delivery_reply(order: Order) -> str:
    """The WhatsApp reply an agent copies once the bundle is loaded."""
    text = f"Your {order.bundle.data_label} bundle for {local_phone(order.recipient_msisdn)} is now active."
    if order.mpesa_receipt:
        text += f" Receipt {order.mpesa_receipt}."
    return text


@transaction.atomic
def order_mark_delivered(*, order: Order, actor) -> str:
    """paid -> delivered, at most once; books the sale. Returns the WhatsApp reply text.

    Atomic and locked: two agents clicking at once deliver (and book) once; the second gets
    OrderNotDeliverable.
    """
    locked, _ = _lock(order.pk)
    if locked.status != OrderStatus.PAID:
        raise OrderNotDeliverable(ORDER_NOT_DELIVERABLE)
    before = _order_state(locked)
    locked.status = OrderStatus.DELIVERED
    locked.delivered_at = timezone.now()
    locked.delivered_by = actor if getattr(actor, "pk", None) else None
    locked.save(update_fields=["status", "delivered_at", "delivered_by", "updated_at"])
    books.post_delivery(order=locked, created_by=locked.delivered_by)
    audit_record(actor=actor, action="order.deliver", obj=locked, before=before, after=_order_state(locked))
    return delivery_reply(locked)


@dataclass
class BulkDelivery:
    delivered: list[tuple[Order, str]]
    skipped: list[tuple[Order, str]]


def orders_mark_delivered(*, orders, actor) -> BulkDelivery:
    """Mark several orders delivered, each in its own transaction; the rest are skipped with why."""
    result = BulkDelivery(delivered=[], skipped=[])
    for order in orders:
        try:
            result.delivered.append((order, order_mark_delivered(order=order, actor=actor)))
        except OrderError as exc:
            result.skipped.append((order, exc.message))
    return result


PAYMENT_REVERSED = "Payment {entry} reversed by {who}: {reason}"
# Follow-ups of a reversed payment in the apps above ledger (reconciliation reopens the claim and
# the till receipt), registered in their AppConfig.ready(): ledger never imports them.
_PAYMENT_REVERSED_HOOKS: list[Callable[..., None]] = []


def payment_reversed_hook_register(hook: Callable[..., None]) -> None:
    """Run ``hook(order=, entry=, reason=, user=)`` whenever an order's payment is reversed, in the
    reversal's transaction (an error in it rolls the reversal back). Registering twice is a no-op."""
    if hook not in _PAYMENT_REVERSED_HOOKS:
        _PAYMENT_REVERSED_HOOKS.append(hook)


@transaction.atomic
def order_payment_reversed(*, order: Order, entry, reason: str, user=None) -> Order:
    """The order follows the reversal of its payment ``entry`` (books.entry_reverse calls this in
    the same transaction, after posting the reversal).

    The order needs review, so it is no longer deliverable, with the entry, who and why in its
    status reason. When the reversed payment came out of Unallocated receipts (a verified claim, or
    a till receipt that paid an unknown STK send), the money is back with its till receipt: the
    order gives up the code (mpesa_receipt cleared, so the receipt can pay a corrected order) and
    the registered hooks reopen the claim and put the receipt back in suspense. Audited.
    Atomic; raises books.EntryNotReversible for a delivered or refunded order (refund it instead).
    """
    locked, _ = _lock(order.pk)
    refusal = books.payment_reversal_refusal(entry, locked)
    if refusal:
        raise books.EntryNotReversible(refusal)
    before = _order_state(locked)
    who = user.get_username() if getattr(user, "pk", None) else "the system"
    locked.status = OrderStatus.NEEDS_REVIEW
    locked.status_reason = clean_text(
        PAYMENT_REVERSED.format(entry=entry.number, who=who, reason=reason), 255
    )
    fields = ["status", "status_reason", "updated_at"]
    if entry.postings.filter(account__key=books.UNALLOCATED, amount__gt=0).exists():
        locked.mpesa_receipt = None  # the code belongs to its till receipt again, back in suspense
        fields.append("mpesa_receipt")
    locked.save(update_fields=fields)
    audit_record(
        actor=user,
        action="order.payment_reversed",
        obj=locked,
        before=before,
        after={**_order_state(locked), "entry": entry.number},
        reason=reason,
    )
    for hook in _PAYMENT_REVERSED_HOOKS:
        hook(order=locked, entry=entry, reason=reason, user=user)
    return locked


# ---------------------------------------------------------------------------------------------
# Applying a gateway's answer (callbacks and status queries both end here)
# ---------------------------------------------------------------------------------------------
APPLIED = "applied"
DUPLICATE = "duplicate"
PENDING = "pending"


# Prompts whose answer is still open: queued, or sent without an answer from the gateway.
OPEN_STK_STATUSES = (StkStatus.QUEUED, StkStatus.UNKNOWN)


@transaction.atomic
def stk_apply_result(
    *, stk: StkRequest, result: StkResult, source: str = "callback", disagreement: str = ""
) -> str:
    """THE one place a gateway result changes an order. Returns "applied", "duplicate" or "pending".

    Success: the order is paid (receipt, amount, paid_at) and booked via post_stk_payment; a
    different amount -> needs_review, booked as unallocated. Money that arrives for an order that
    was failed/expired is still taken (paid); for a cancelled or already-paid order it is booked
    as unallocated for a person to decide. ``disagreement`` (the callback's figures disagree with
    what the gateway confirmed) puts the order in needs_review with the money held as unallocated.
    Failure: the order fails with plain words. Pending: nothing changes. Idempotent: a result
    already applied changes nothing. Raises ReceiptAlreadyUsed when the receipt pays another order
    (nothing is written).
    """
    order, stk = _lock(stk.order_id, stk.pk)
    now = timezone.now()

    if result.status == "pending":
        return PENDING

    if result.status != "success":
        if stk.status not in OPEN_STK_STATUSES:
            return DUPLICATE  # already resolved: a late failure never undoes a payment
        before = _order_state(order)
        stk.status = StkStatus.FAILED
        stk.result_code = clean_text(result.result_code, 16)
        stk.result_desc = clean_text(result.result_desc)
        stk.resolved_at = now
        stk.save()
        if order.status == OrderStatus.PENDING_PAYMENT and is_latest_stk(stk):
            order.status = OrderStatus.FAILED
            order.status_reason = describe_result(result.result_code, result.result_desc)[:255]
            order.save(update_fields=["status", "status_reason", "updated_at"])
        audit_record(
            actor=None,
            action=AuditAction.STK_FAILED,
            source=source,
            obj=order,
            before=before,
            after={**_order_state(order), "result_code": stk.result_code},
        )
        return APPLIED

    # --- success ---
    receipt = _receipt_or_none(result.receipt)
    if stk.status == StkStatus.SUCCESS:
        # The status query (no receipt) may have won the race; the callback still brings it.
        if receipt and not stk.receipt:
            stk.receipt = receipt
            stk.save(update_fields=["receipt"])
            if order.mpesa_receipt is None and stk.pk == _paying_stk_id(order):
                _check_receipt_free(receipt, order)
                order.mpesa_receipt = receipt
                order.save(update_fields=["mpesa_receipt", "updated_at"])
            return APPLIED
        return DUPLICATE

    amount = result.amount if result.amount is not None else stk.amount
    if receipt:
        _check_receipt_free(receipt, order)
    before = _order_state(order)
    stk.status = StkStatus.SUCCESS
    stk.result_code = clean_text(result.result_code, 16) or "0"
    stk.result_desc = clean_text(result.result_desc)
    stk.receipt = receipt or ""
    stk.resolved_at = now
    stk.save()

    if order.status in (OrderStatus.PENDING_PAYMENT, OrderStatus.FAILED, OrderStatus.EXPIRED):
        order.amount_paid = amount
        order.mpesa_receipt = receipt
        order.paid_at = result.paid_at or now
        if disagreement:
            order.status = OrderStatus.NEEDS_REVIEW
            order.status_reason = clean_text(disagreement)
            books.post_stk_unallocated(order=order, amount=amount, receipt=receipt or "", gateway=stk.gateway)
        elif amount == order.price:
            order.status = OrderStatus.PAID
            order.status_reason = ""
            books.post_stk_payment(order=order, amount=amount, receipt=receipt or "", gateway=stk.gateway)
        else:
            order.status = OrderStatus.NEEDS_REVIEW
            order.status_reason = AMOUNT_MISMATCH.format(paid=amount, price=order.price)
            books.post_stk_unallocated(order=order, amount=amount, receipt=receipt or "", gateway=stk.gateway)
        order.save()
        action = AuditAction.STK_PAID
    elif order.status == OrderStatus.CANCELLED:
        order.status = OrderStatus.NEEDS_REVIEW
        order.status_reason = PAID_AFTER_CANCEL.format(paid=amount)
        order.amount_paid = amount
        order.mpesa_receipt = receipt
        order.paid_at = result.paid_at or now
        order.save()
        books.post_stk_unallocated(order=order, amount=amount, receipt=receipt or "", gateway=stk.gateway)
        action = AuditAction.STK_PAID_AFTER_CANCEL
    else:
        # Already paid by another prompt or a till claim: a second payment is real money too.
        books.post_stk_extra_payment(
            order=order, amount=amount, receipt=receipt or "", gateway=stk.gateway, stk_id=stk.pk
        )
        action = AuditAction.STK_EXTRA_PAYMENT
    audit_record(
        actor=None,
        action=action,
        source=source,
        obj=order,
        before=before,
        after={**_order_state(order), "stk": stk.pk, "amount": amount},
    )
    return APPLIED


def _paying_stk_id(order: Order) -> int | None:
    return (
        StkRequest.objects.filter(order=order, status=StkStatus.SUCCESS)
        .order_by("resolved_at", "pk")
        .values_list("pk", flat=True)
        .first()
    )


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


def _unknown_sends():
    """Sends without any gateway id (the push timed out): unknown, or unknown and since expired."""
    return StkRequest.objects.filter(
        Q(checkout_request_id__isnull=True) | Q(checkout_request_id=""),
        gateway_reference="",
        status__in=(StkStatus.UNKNOWN, StkStatus.EXPIRED),
    )


def unknown_prompts_open(*, now=None) -> list[StkRequest]:
    """Sends without any gateway id whose order still waits (or expired) unpaid: the prompts a
    till receipt may turn out to have paid. Few by nature (timeouts only)."""
    now = now or timezone.now()
    since = now - timedelta(days=settings.GATEWAY_TIME_WINDOW_DAYS)
    return list(
        _unknown_sends()
        .filter(created_at__gte=since, order__status__in=(OrderStatus.PENDING_PAYMENT, OrderStatus.EXPIRED))
        .select_related("order")
        .order_by("pk")
    )


def payer_fits(masked: str, msisdn: str) -> bool:
    """Does a till receipt's payer (``2547 ***** 126``, ``0746***921``, a hash) fit ``msisdn``?

    The shown digits before and after the masked run must agree (masks vary in length), at least
    six of them, so a hash, a name or a bare mask never fits.
    """
    shown = re.sub(r"[^0-9*]", "", masked or "")
    match = re.fullmatch(r"(\d*)\*+(\d*)|(\d+)", shown)
    if not match:
        return False
    head, tail = (match.group(1), match.group(2)) if match.group(3) is None else (match.group(3), "")
    if head.startswith("0"):
        head = "254" + head[1:]
    if len(head) + len(tail) < 6 or len(head) + len(tail) > len(msisdn):
        return False
    return msisdn.startswith(head) and msisdn.endswith(tail)


@transaction.atomic
def stk_pay_from_till_receipt(*, stk: StkRequest, code: str, amount, paid_at) -> Order:
    """An unknown send turned out paid: M-Pesa's till receipt ``code`` is its payment.

    The receipt is already booked (Dr M-Pesa till / Cr Unallocated); this moves it to the order
    (Dr Unallocated / Cr Bundles owed). Atomic; raises OrderError when the prompt or order is no
    longer open, ReceiptAlreadyUsed when the code pays another order.
    """
    order, stk = _lock(stk.order_id, stk.pk)
    if stk.status not in (StkStatus.UNKNOWN, StkStatus.EXPIRED) or order.status not in (
        OrderStatus.PENDING_PAYMENT,
        OrderStatus.EXPIRED,
    ):
        raise OrderError(ORDER_NOT_PENDING)
    _check_receipt_free(code, order)
    before = _order_state(order)
    now = timezone.now()
    stk.status, stk.receipt, stk.resolved_at = StkStatus.SUCCESS, code, now
    stk.result_desc = clean_text(f"Paid: till receipt {code} matched by payer, amount and time")
    stk.save(update_fields=["status", "receipt", "resolved_at", "result_desc"])
    order.amount_paid, order.mpesa_receipt, order.paid_at = amount, code, paid_at or now
    if amount == order.price:
        order.status, order.status_reason = OrderStatus.PAID, ""
    else:
        order.status = OrderStatus.NEEDS_REVIEW
        order.status_reason = AMOUNT_MISMATCH.format(paid=amount, price=order.price)
    order.save()
    if order.status == OrderStatus.PAID:
        books.post_claim_verified(order=order, amount=amount, receipt=code)
    after = _order_state(order)
    audit_record(actor=None, action="stk.paid_by_till_receipt", obj=order, before=before, after=after)
    return order


# ---------------------------------------------------------------------------------------------
# Callbacks: the edge checks the shape and stores; the worker finds the prompt, asks the gateway
# to confirm a success, and applies. Nothing from a callback alone moves money.
# ---------------------------------------------------------------------------------------------
_PARSERS = {
    CallbackSource.PAYHERO: parse_payhero_callback,
    CallbackSource.DARAJA: parse_daraja_callback,
}
# Processors of stored callbacks from other apps (C2B confirmations belong to reconciliation,
# which registers them at start-up: ledger never imports the apps above it).
_PROCESSORS: dict[str, Callable[[CallbackLog], str]] = {}
CALLBACK_LEASE = timedelta(minutes=2)  # how long one worker owns a callback it is processing
CALLBACK_MAX_BACKOFF = 600  # seconds between confirmation attempts, at most
OPEN_CALLBACK_OUTCOMES = (CallbackOutcome.RECEIVED, CallbackOutcome.CONFIRMING)


def callback_processor_register(source: str, processor: Callable[[CallbackLog], str]) -> None:
    """Let another app apply its own stored callbacks (retried by the sweeper, re-processed)."""
    _PROCESSORS[source] = processor


def callback_check(*, source: str, body: bytes) -> StkResult:
    """Parse a callback body strictly. Raises CallbackParseError (the edge answers 400)."""
    parser = _PARSERS.get(source)
    if parser is None:
        raise CallbackParseError(f"No STK parser for source {source!r}")
    return parser(body)


def callback_queue(*, log: CallbackLog) -> None:
    """Hand a stored callback to the worker. If the queue is unreachable the sweeper finds it."""
    from django_q.tasks import async_task

    try:
        async_task("ledger.tasks.callback_process", log.pk, task_name=f"callback-{log.pk}")
    except Exception:  # noqa: BLE001 - the body is stored; callbacks_sweep retries it
        logger.warning("Callback %s stored but not queued; the sweeper will take it", log.pk, exc_info=True)


def _callback_claim(log_id: int, *, first: bool, now) -> bool:
    """Take a callback for processing (one worker at a time, by a lease on next_attempt_at)."""
    qs = CallbackLog.objects.filter(pk=log_id, authenticated=True, outcome__in=OPEN_CALLBACK_OUTCOMES)
    qs = qs.filter(attempts=0) if first else qs.filter(next_attempt_at__lte=now)
    return bool(qs.update(next_attempt_at=now + CALLBACK_LEASE, attempts=F("attempts") + 1))


def callback_process_queued(*, log_id: int) -> str | None:
    """The worker's first look at a callback the edge stored. None if another worker has it."""
    if not _callback_claim(log_id, first=True, now=timezone.now()):
        return None
    return callback_process(log=CallbackLog.objects.get(pk=log_id))


def callbacks_sweep(*, now=None, limit: int = 200) -> dict[str, int]:
    """Every minute: process callbacks stored but never processed (a queue or database outage)
    and successes waiting for confirmation whose next attempt is due. Idempotent."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    due = (
        CallbackLog.objects.filter(
            authenticated=True, outcome__in=OPEN_CALLBACK_OUTCOMES, next_attempt_at__lte=now
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    for log_id in list(due):
        if not _callback_claim(log_id, first=False, now=now):
            continue
        try:
            outcome = callback_process(log=CallbackLog.objects.get(pk=log_id), now=now)
        except CallbackParseError:
            outcome = CallbackOutcome.REJECTED
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def _find_stk(result: StkResult) -> StkRequest | None:
    """By CheckoutRequestID first; PayHero also by its reference or our order reference."""
    if result.checkout_request_id:
        stk = StkRequest.objects.filter(checkout_request_id=result.checkout_request_id).first()
        if stk:
            return stk
    if result.gateway_reference:
        stk = StkRequest.objects.filter(gateway_reference=result.gateway_reference).order_by("-pk").first()
        if stk:
            return stk
    if result.external_reference:
        # The latest prompt for the order; a success on it still pays the order.
        return StkRequest.objects.filter(order__reference=result.external_reference).order_by("-pk").first()
    return None


def unknown_prompt_candidates(*, phone: str | None, amount, at) -> list[StkRequest]:
    """Prompts whose send had no answer that a payment of ``amount`` from ``phone`` at ``at`` fits:
    same payer, same amount, sent within STK_EXPIRE_AFTER before the payment (clock skew allowed)."""
    if not phone or amount is None:
        return []
    at = at or timezone.now()
    window = timedelta(seconds=settings.STK_EXPIRE_AFTER)
    skew = timedelta(seconds=settings.CLOCK_SKEW_SECONDS)
    return list(
        _unknown_sends()
        .filter(
            phone=phone,
            amount=amount,
            created_at__gte=at - window,
            created_at__lte=at + skew,
        )
        .order_by("pk")[:5]
    )


@transaction.atomic
def _adopt_unknown_prompt(stk_id: int, result: StkResult) -> StkRequest | None:
    """Give an unknown send the gateway's ids from its callback (once; never steal another's id)."""
    stk = StkRequest.objects.select_for_update().get(pk=stk_id)
    if stk.checkout_request_id or (
        result.checkout_request_id
        and StkRequest.objects.filter(checkout_request_id=result.checkout_request_id).exists()
    ):
        return None
    stk.checkout_request_id = clean_text(result.checkout_request_id, 64) or None
    stk.gateway_reference = clean_text(result.gateway_reference or result.checkout_request_id, 64)
    stk.merchant_request_id = clean_text(result.merchant_request_id, 64)
    stk.save(update_fields=["checkout_request_id", "gateway_reference", "merchant_request_id"])
    audit_record(
        actor=None,
        action="stk.adopt_unknown",
        obj=stk.order,
        after={"stk": stk.pk, "checkout_request_id": stk.checkout_request_id},
    )
    return stk


def callback_process(*, log: CallbackLog, now=None) -> str:
    """Parse, match, confirm and apply one stored callback; record the outcome. Returns it.

    - a callback that failed authentication is never applied, by any path (stays rejected);
    - a body that does not parse is rejected with the reason;
    - a success is applied only once the gateway's status query confirms it (STK_CONFIRM_SUCCESS):
      the confirmed payment pays the amount asked for; the callback's amount, receipt and phone
      are cross-checks, and a disagreement holds the money for review with both sides shown.
      A query that says pending or cannot be reached leaves the callback *confirming*, retried by
      callbacks_sweep with growing gaps until STK_EXPIRE_AFTER; a query that says failed leaves it
      *unconfirmed* and applies the failure;
    - a failure is applied directly (it moves no money).
    Idempotent: safe to run any number of times on the same log.
    """
    now = now or timezone.now()
    if not log.authenticated:
        return _log_outcome(log, CallbackOutcome.REJECTED, CALLBACK_NOT_AUTHENTICATED)
    if log.source in _PROCESSORS:
        return _PROCESSORS[log.source](log)
    if log.source not in _PARSERS:
        return _log_outcome(log, CallbackOutcome.APPLIED, "Nothing to apply for this kind of callback.")
    try:
        result = callback_check(source=log.source, body=log.body.encode("utf-8"))
    except CallbackParseError as exc:
        return _log_outcome(log, CallbackOutcome.REJECTED, exc.message)

    stk = _find_stk(result)
    if stk is None and result.status == "success":
        candidates = unknown_prompt_candidates(
            phone=result.phone, amount=result.amount, at=result.paid_at or log.received_at
        )
        if len(candidates) == 1:
            stk = _adopt_unknown_prompt(candidates[0].pk, result)
        elif len(candidates) > 1:
            detail = CALLBACK_SEVERAL_CANDIDATES.format(count=len(candidates))
            return _log_outcome(log, CallbackOutcome.UNKNOWN_ORDER, detail, result=result)
    if stk is None:
        return _log_outcome(log, CallbackOutcome.UNKNOWN_ORDER, CALLBACK_UNKNOWN_ORDER, result=result)

    already_paid = stk.status == StkStatus.SUCCESS and (stk.receipt or not result.receipt)
    if result.status == "success" and settings.STK_CONFIRM_SUCCESS and not already_paid:
        return _confirm_and_apply(log, stk, result, now=now)
    return _apply_and_log(log, stk, result, source="callback")


def _apply_and_log(log: CallbackLog, stk: StkRequest, result: StkResult, *, source: str, disagreement=""):
    try:
        with transaction.atomic():
            applied = stk_apply_result(stk=stk, result=result, source=source, disagreement=disagreement)
            outcome = CallbackOutcome.APPLIED if applied == APPLIED else CallbackOutcome.DUPLICATE
            detail = "" if applied != PENDING else "Still pending: nothing changed."
            if disagreement and applied == APPLIED:
                detail = disagreement
            return _log_outcome(log, outcome, detail, result=result, stk=stk)
    except (DomainError, IntegrityError) as exc:
        detail = getattr(exc, "message", None) or str(exc)
        return _log_outcome(log, CallbackOutcome.ERROR, detail, result=result)


def _status_query(stk: StkRequest) -> StatusQuery:
    return StatusQuery(
        checkout_request_id=stk.checkout_request_id,
        gateway_reference=stk.gateway_reference or None,
        order_reference=stk.order.reference,
        phone=stk.phone,
        amount=stk.amount,
        sent_at=stk.created_at,
    )


def _confirm_and_apply(log: CallbackLog, stk: StkRequest, claimed: StkResult, *, now) -> str:
    """Ask the gateway (no lock held during HTTP), then apply what it confirms."""
    try:
        answer = get_gateway(stk.gateway).query_status(_status_query(stk))
    except GatewayError as exc:
        return _still_confirming(log, claimed, exc.message, now=now)
    sides = {"callback": _figures(claimed), "gateway": _figures(answer)}
    if answer.status == "pending":
        return _still_confirming(log, claimed, answer.plain_message, now=now, sides=sides)
    if answer.status != "success":
        _apply_and_log(log, stk, answer, source="query")  # the gateway's failure is trustworthy
        detail = CALLBACK_NOT_CONFIRMED.format(status="failed", why=answer.plain_message)
        return _log_outcome(log, CallbackOutcome.UNCONFIRMED, detail, result=claimed, sides=sides)

    confirmed_amount = answer.amount if answer.amount is not None else stk.amount
    differences = _disagreements(stk, claimed, answer, confirmed_amount)
    sides["disagreements"] = differences
    confirmed = StkResult(
        status="success",
        checkout_request_id=stk.checkout_request_id,
        external_reference=claimed.external_reference,
        merchant_request_id=claimed.merchant_request_id,
        result_code=answer.result_code or "0",
        result_desc=answer.result_desc or claimed.result_desc,
        receipt=answer.receipt or claimed.receipt,
        amount=confirmed_amount,
        phone=stk.phone,
        paid_at=claimed.paid_at or answer.paid_at,
        raw=claimed.raw,
        gateway_reference=stk.gateway_reference or None,
    )
    disagreement = DISAGREEMENT.format(details="; ".join(differences)) if differences else ""
    outcome = _apply_and_log(log, stk, confirmed, source="callback", disagreement=disagreement)
    log.confirmation = _json_safe(sides)
    log.save(update_fields=["confirmation"])
    return outcome


def _disagreements(stk: StkRequest, claimed: StkResult, answer: StkResult, confirmed_amount) -> list[str]:
    out = []
    if answer.amount is not None and answer.amount != stk.amount:
        out.append(f"the gateway confirmed KES {answer.amount} but the prompt asked for KES {stk.amount}")
    if claimed.amount is not None and claimed.amount != confirmed_amount:
        out.append(f"the callback says KES {claimed.amount}, the gateway confirmed KES {confirmed_amount}")
    if claimed.receipt and answer.receipt and claimed.receipt.upper() != answer.receipt.upper():
        out.append(f"the callback says receipt {claimed.receipt}, the gateway says {answer.receipt}")
    if claimed.phone and len(claimed.phone) == 12 and claimed.phone != stk.phone:
        out.append(f"the callback says phone {claimed.phone}, the prompt went to {stk.phone}")
    return out


def _figures(result: StkResult) -> dict:
    return {
        "status": result.status,
        "result_code": result.result_code,
        "amount": str(result.amount) if result.amount is not None else None,
        "receipt": result.receipt,
        "phone": result.phone,
        "description": clean_text(result.result_desc),
    }


def _json_safe(value):
    return redact_json(clean_json(value))


def _still_confirming(log: CallbackLog, claimed: StkResult, why: str, *, now, sides=None) -> str:
    """Try again later with growing gaps; after STK_EXPIRE_AFTER give up (nothing was paid)."""
    if log.received_at <= now - timedelta(seconds=settings.STK_EXPIRE_AFTER):
        detail = CALLBACK_NEVER_CONFIRMED.format(minutes=settings.STK_EXPIRE_AFTER // 60)
        return _log_outcome(log, CallbackOutcome.UNCONFIRMED, detail, result=claimed, sides=sides)
    gap = min(30 * 2 ** max(log.attempts - 1, 0), CALLBACK_MAX_BACKOFF)
    return _log_outcome(
        log,
        CallbackOutcome.CONFIRMING,
        CALLBACK_CONFIRMING.format(why=clean_text(why, 200)),
        result=claimed,
        sides=sides,
        next_attempt_at=now + timedelta(seconds=gap),
    )


def _log_outcome(
    log: CallbackLog,
    outcome: str,
    detail: str,
    *,
    result: StkResult | None = None,
    stk=None,
    sides: dict | None = None,
    next_attempt_at=None,
) -> str:
    log.outcome = outcome
    log.detail = clean_text(detail, 2000)
    log.processed_at = timezone.now()
    log.next_attempt_at = next_attempt_at
    fields = ["outcome", "detail", "processed_at", "next_attempt_at"]
    if result is not None:
        log.checkout_request_id = clean_text(result.checkout_request_id, 64)
        log.receipt = clean_text(result.receipt, 20)
        log.amount = result.amount
        fields += ["checkout_request_id", "receipt", "amount"]
        if stk is not None:
            log.stk_request = stk
            fields.append("stk_request")
    if sides is not None:
        log.confirmation = _json_safe(sides)
        fields.append("confirmation")
    log.save(update_fields=fields)
    return outcome


def callback_reprocess(*, log: CallbackLog, actor=None) -> str:
    """Apply a stored callback again (after a fix, or an order created late). Safe to repeat.

    A callback that failed authentication is refused: it can never be applied by any path.
    """
    if not log.authenticated:
        audit_record(
            actor=actor, action="callback.reprocess_refused", obj=log, after={"outcome": log.outcome}
        )
        return log.outcome
    CallbackLog.objects.filter(pk=log.pk).update(attempts=F("attempts") + 1)
    log.refresh_from_db()
    outcome = callback_process(log=log)
    audit_record(actor=actor, action="callback.reprocess", obj=log, after={"outcome": outcome})
    return outcome


# ---------------------------------------------------------------------------------------------
# Chasing prompts that never got a callback
# ---------------------------------------------------------------------------------------------
CHASE_LOCK = "ledger:stk_chase"
CHASE_LEASE = timedelta(minutes=5)
MAX_BACKOFF = 600  # seconds


def _backoff(query_count: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(query_count - 1, 0), MAX_BACKOFF))


def _claim_batch(now, limit: int) -> list[int]:
    """Ids of queued prompts due for a status query, leased so no other chaser takes them."""
    due = StkRequest.objects.filter(
        status__in=OPEN_STK_STATUSES,
        created_at__lte=now - timedelta(seconds=settings.STK_CHASE_AFTER),
    ).exclude(next_query_at__gt=now)
    with transaction.atomic():
        qs = due.order_by("next_query_at", "pk")
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)
        ids = list(qs.values_list("pk", flat=True)[:limit])
        StkRequest.objects.filter(pk__in=ids).update(next_query_at=now + CHASE_LEASE)
    return ids


def stk_chase(*, now=None, limit: int = 100) -> dict[str, int]:
    """Ask the gateway about prompts queued longer than STK_CHASE_AFTER; apply answers like callbacks.

    Backs off exponentially (next_query_at); after STK_EXPIRE_AFTER a prompt still without an
    answer expires, keeping the last answer in last_query_result. A gateway that is down only
    delays the next look. Never overlaps itself (cache lock + leased rows).
    """
    counts = {"queried": 0, "applied": 0, "expired": 0, "errors": 0}
    if not cache.add(CHASE_LOCK, "1", timeout=int(CHASE_LEASE.total_seconds())):
        return counts
    try:
        now = now or timezone.now()
        for stk_id in _claim_batch(now, limit):
            outcome = stk_chase_one(stk_id=stk_id, now=now)
            counts["queried"] += 1
            if outcome in counts:
                counts[outcome] += 1
    finally:
        cache.delete(CHASE_LOCK)
    return counts


def stk_chase_one(*, stk_id: int, now=None) -> str:
    """Query one prompt and apply the answer. Returns applied / expired / errors / pending."""
    now = now or timezone.now()
    stk = StkRequest.objects.select_related("order").get(pk=stk_id)
    if stk.status not in OPEN_STK_STATUSES:
        return "pending"
    result: StkResult | None = None
    answer: dict
    if not stk.checkout_request_id and not stk.gateway_reference:
        # An unknown send has no id to ask about: it waits for a callback or a till receipt.
        answer = {"error": "No gateway id to ask about: waiting for a callback or a till receipt."}
    else:
        try:
            result = get_gateway(stk.gateway).query_status(_status_query(stk))
            answer = {
                "status": result.status,
                "result_code": result.result_code,
                "result_desc": clean_text(result.result_desc),
                "raw": _json_safe(result.raw),
            }
        except GatewayUnavailable as exc:
            answer = {"error": clean_text(exc.message), "unavailable": True}
        except GatewayError as exc:
            answer = {"error": clean_text(exc.message)}

    outcome = "errors" if "error" in answer else "pending"
    if result is not None and result.status != "pending":
        try:
            applied = stk_apply_result(stk=stk, result=result, source="query")
        except DomainError as exc:
            answer["error"] = exc.message
            outcome = "errors"
        else:
            outcome = "applied" if applied == APPLIED else "pending"

    with transaction.atomic():
        order, stk = _lock(stk.order_id, stk.pk)
        stk.query_count += 1
        stk.last_query_at = now
        stk.last_query_result = answer
        fields = ["query_count", "last_query_at", "last_query_result"]
        if stk.status in OPEN_STK_STATUSES and stk.created_at <= now - timedelta(
            seconds=settings.STK_EXPIRE_AFTER
        ):
            _expire(order, stk, now)
            outcome = "expired"
        elif stk.status in OPEN_STK_STATUSES:
            stk.next_query_at = now + _backoff(stk.query_count)
            fields.append("next_query_at")
        stk.save(update_fields=fields)
    return outcome


def _expire(order: Order, stk: StkRequest, now) -> None:
    before = _order_state(order)
    stk.status = StkStatus.EXPIRED
    stk.resolved_at = now
    stk.next_query_at = None
    stk.save(update_fields=["status", "resolved_at", "next_query_at"])
    if order.status == OrderStatus.PENDING_PAYMENT and is_latest_stk(stk):
        order.status = OrderStatus.EXPIRED
        order.status_reason = NO_ANSWER.format(minutes=settings.STK_EXPIRE_AFTER // 60)
        order.save(update_fields=["status", "status_reason", "updated_at"])
    audit_record(actor=None, action="stk.expire", obj=order, before=before, after=_order_state(order))
