"""Orders and STK pushes: every write that changes an order or an STK request lives here.

Rules every function keeps:
- an order's status changes only in this module, inside one transaction with its audit row;
- rows are locked Order first, then StkRequest (a stable order, so two writers never deadlock);
- no row lock is held while a gateway is called over HTTP;
- applying the same gateway result twice changes nothing the second time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from catalog.models import Bundle
from console.audit import audit_record
from console.exceptions import DomainError
from console.phones import InvalidPhoneNumber, local_msisdn, normalise_msisdn
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
ORDER_NOT_CANCELLABLE = "Only an order still waiting for payment can be cancelled."
ORDER_NOT_DELIVERABLE = "Only a paid order can be marked delivered."
ORDER_NOT_PENDING = "This order is not waiting for payment."
RECEIPT_ALREADY_USED = "M-Pesa receipt {receipt} already pays order {other}."
AMOUNT_MISMATCH = "Paid KES {paid} but the bundle costs KES {price}; the money is held as unallocated."
PAID_AFTER_CANCEL = "Paid KES {paid} after the order was cancelled; the money is held as unallocated."
NO_ANSWER = "No answer from M-Pesa within {minutes} minutes."
CALLBACK_UNKNOWN_ORDER = "No STK request or order matches this callback."
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
    path = reverse(f"ledger:{source}_callback", kwargs={"token": settings.CALLBACK_TOKEN})
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
    StkRequest; (2) call the gateway; (3) atomically store its answer. A gateway error fails the
    order with the gateway's readable reason and raises StkSendFailed. With the simulator, the
    simulated callback is queued as a django-q2 task once the answer is committed.
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
    except (GatewayError, ValueError) as exc:
        reason = getattr(exc, "message", None) or str(exc)
        _stk_send_failed(stk_id=stk.pk, reason=reason, raw=getattr(exc, "raw", None), actor=created_by)
        raise StkSendFailed(reason)

    with transaction.atomic():
        stk = StkRequest.objects.select_for_update().get(pk=stk.pk)
        stk.checkout_request_id = accepted.checkout_request_id or None
        stk.merchant_request_id = accepted.merchant_request_id
        stk.gateway_reference = accepted.gateway_reference
        stk.raw_request = accepted.raw_request
        stk.raw_response = accepted.raw_response
        stk.next_query_at = timezone.now() + timedelta(seconds=settings.STK_CHASE_AFTER)
        stk.save()
        if gateway_name == "simulator":
            transaction.on_commit(lambda: _queue_simulated_callback(stk.pk))
    return stk


@transaction.atomic
def _stk_send_failed(*, stk_id: int, reason: str, raw, actor) -> None:
    stk = StkRequest.objects.get(pk=stk_id)
    order, stk = _lock(stk.order_id, stk_id)
    before = _order_state(order)
    stk.status = StkStatus.ERROR
    stk.result_desc = reason[:255]
    stk.raw_response = raw if isinstance(raw, dict) else ({"body": str(raw)} if raw else {})
    stk.resolved_at = timezone.now()
    stk.save()
    if order.status == OrderStatus.PENDING_PAYMENT:
        order.status = OrderStatus.FAILED
        order.status_reason = reason[:255]
        order.save(update_fields=["status", "status_reason", "updated_at"])
    audit_record(actor=actor, action="stk.send_failed", obj=order, before=before, after=_order_state(order))


def _queue_simulated_callback(stk_id: int) -> None:
    from django_q.tasks import async_task

    async_task("ledger.tasks.simulator_callback_deliver", stk_id, task_name=f"simulate-stk-{stk_id}")


def order_retry(*, order: Order, created_by=None) -> StkRequest:
    """Send a new prompt for a failed or expired order (a new StkRequest on the same order).

    Raises OrderNotRetryable, or StkSendFailed like stk_send.
    """
    with transaction.atomic():
        locked, _ = _lock(order.pk)
        if locked.status not in (OrderStatus.FAILED, OrderStatus.EXPIRED) or locked.channel != Channel.STK:
            raise OrderNotRetryable(ORDER_NOT_RETRYABLE)
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


# ---------------------------------------------------------------------------------------------
# Applying a gateway's answer (callbacks and status queries both end here)
# ---------------------------------------------------------------------------------------------
APPLIED = "applied"
DUPLICATE = "duplicate"
PENDING = "pending"


@transaction.atomic
def stk_apply_result(*, stk: StkRequest, result: StkResult, source: str = "callback") -> str:
    """THE one place a gateway result changes an order. Returns "applied", "duplicate" or "pending".

    Success: the order is paid (receipt, amount, paid_at) and booked via post_stk_payment; a
    different amount -> needs_review, booked as unallocated. Money that arrives for an order that
    was failed/expired is still taken (paid); for a cancelled or already-paid order it is booked
    as unallocated for a person to decide. Failure: the order fails with plain words. Pending:
    nothing changes. Idempotent: a result already applied changes nothing. Raises
    ReceiptAlreadyUsed when the receipt pays another order (nothing is written).
    """
    order, stk = _lock(stk.order_id, stk.pk)
    now = timezone.now()

    if result.status == "pending":
        return PENDING

    if result.status != "success":
        if stk.status != StkStatus.QUEUED:
            return DUPLICATE  # already resolved: a late failure never undoes a payment
        before = _order_state(order)
        stk.status = StkStatus.FAILED
        stk.result_code = result.result_code or ""
        stk.result_desc = (result.result_desc or "")[:255]
        stk.resolved_at = now
        stk.save()
        if order.status == OrderStatus.PENDING_PAYMENT and is_latest_stk(stk):
            order.status = OrderStatus.FAILED
            order.status_reason = describe_result(result.result_code, result.result_desc)[:255]
            order.save(update_fields=["status", "status_reason", "updated_at"])
        audit_record(
            actor=None,
            action=f"stk.failed.{source}",
            obj=order,
            before=before,
            after={**_order_state(order), "result_code": stk.result_code},
        )
        return APPLIED

    # --- success ---
    receipt = (result.receipt or "").strip().upper() or None
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
    stk.result_code = result.result_code or "0"
    stk.result_desc = (result.result_desc or "")[:255]
    stk.receipt = receipt or ""
    stk.resolved_at = now
    stk.save()

    if order.status in (OrderStatus.PENDING_PAYMENT, OrderStatus.FAILED, OrderStatus.EXPIRED):
        order.amount_paid = amount
        order.mpesa_receipt = receipt
        order.paid_at = result.paid_at or now
        if amount == order.price:
            order.status = OrderStatus.PAID
            order.status_reason = ""
            books.post_stk_payment(order=order, amount=amount, receipt=receipt or "", gateway=stk.gateway)
        else:
            order.status = OrderStatus.NEEDS_REVIEW
            order.status_reason = AMOUNT_MISMATCH.format(paid=amount, price=order.price)
            books.post_stk_unallocated(order=order, amount=amount, receipt=receipt or "", gateway=stk.gateway)
        order.save()
        action = f"stk.paid.{source}"
    elif order.status == OrderStatus.CANCELLED:
        order.status = OrderStatus.NEEDS_REVIEW
        order.status_reason = PAID_AFTER_CANCEL.format(paid=amount)
        order.amount_paid = amount
        order.mpesa_receipt = receipt
        order.paid_at = result.paid_at or now
        order.save()
        books.post_stk_unallocated(order=order, amount=amount, receipt=receipt or "", gateway=stk.gateway)
        action = f"stk.paid_after_cancel.{source}"
    else:
        # Already paid by another prompt or a till claim: a second payment is real money too.
        books.post_stk_extra_payment(
            order=order, amount=amount, receipt=receipt or "", gateway=stk.gateway, stk_id=stk.pk
        )
        action = f"stk.extra_payment.{source}"
    audit_record(
        actor=None,
        action=action,
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


# ---------------------------------------------------------------------------------------------
# Callbacks
# ---------------------------------------------------------------------------------------------
_PARSERS = {
    CallbackSource.PAYHERO: parse_payhero_callback,
    CallbackSource.DARAJA: parse_daraja_callback,
}


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


def callback_process(*, log: CallbackLog) -> str:
    """Parse and apply one stored callback; record the outcome on the log. Returns the outcome.

    Parse + apply run in one transaction; on any error it rolls back whole and the log keeps
    outcome "error" with the reason (CallbackParseError is re-raised so the edge answers 400).
    Safe to run any number of times on the same log.
    """
    parser = _PARSERS.get(log.source)
    try:
        if parser is None:
            raise CallbackParseError(f"No STK parser for source {log.source!r}")
        with transaction.atomic():
            result = parser(log.body.encode("utf-8"))
            stk = _find_stk(result)
            if stk is None:
                outcome, detail = CallbackOutcome.UNKNOWN_ORDER, CALLBACK_UNKNOWN_ORDER
            else:
                applied = stk_apply_result(stk=stk, result=result, source="callback")
                outcome = CallbackOutcome.APPLIED if applied == APPLIED else CallbackOutcome.DUPLICATE
                detail = "" if applied != PENDING else "Still pending: nothing changed."
            _log_outcome(log, outcome, detail, result=result, stk=stk)
        return outcome
    except CallbackParseError as exc:
        _log_outcome(log, CallbackOutcome.ERROR, exc.message)
        raise
    except (DomainError, IntegrityError) as exc:
        _log_outcome(log, CallbackOutcome.ERROR, getattr(exc, "message", None) or str(exc))
        return CallbackOutcome.ERROR


def _log_outcome(log: CallbackLog, outcome: str, detail: str, *, result: StkResult | None = None, stk=None):
    log.outcome = outcome
    log.detail = detail
    log.processed_at = timezone.now()
    log.attempts += 1
    fields = ["outcome", "detail", "processed_at", "attempts"]
    if result is not None:
        log.checkout_request_id = (result.checkout_request_id or "")[:64]
        log.receipt = (result.receipt or "")[:20]
        log.stk_request = stk
        fields += ["checkout_request_id", "receipt", "stk_request"]
    log.save(update_fields=fields)


def callback_reprocess(*, log: CallbackLog, actor=None) -> str:
    """Apply a stored callback again (after a fix, or an order created late). Safe to repeat."""
    try:
        outcome = callback_process(log=log)
    except CallbackParseError:
        outcome = CallbackOutcome.ERROR
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
        status=StkStatus.QUEUED,
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
    if stk.status != StkStatus.QUEUED:
        return "pending"
    result: StkResult | None = None
    answer: dict
    try:
        result = get_gateway(stk.gateway).query_status(
            StatusQuery(
                checkout_request_id=stk.checkout_request_id,
                gateway_reference=stk.gateway_reference or None,
                order_reference=stk.order.reference,
                phone=stk.phone,
                amount=stk.amount,
            )
        )
        answer = {
            "status": result.status,
            "result_code": result.result_code,
            "result_desc": result.result_desc,
            "raw": result.raw,
        }
    except GatewayUnavailable as exc:
        answer = {"error": exc.message, "unavailable": True}
    except GatewayError as exc:
        answer = {"error": exc.message}

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
        if stk.status == StkStatus.QUEUED and stk.created_at <= now - timedelta(
            seconds=settings.STK_EXPIRE_AFTER
        ):
            _expire(order, stk, now)
            outcome = "expired"
        elif stk.status == StkStatus.QUEUED:
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
