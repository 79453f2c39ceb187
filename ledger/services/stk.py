"""STK prompts: sending one, applying a gateway's answer, and the prompts whose send had no answer
(matched later by a callback or paid by a till receipt)."""

from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from console.kernel.audit import AuditAction, audit_record
from console.kernel.plausible import clean_text
from ledger import books
from ledger.gateways import (
    GatewayError,
    GatewayUnavailable,
    StkPushRequest,
    StkResult,
    describe_result,
    get_gateway,
)
from ledger.models import Order, OrderStatus, StkRequest, StkStatus

from .common import (
    AMOUNT_MISMATCH,
    APPLIED,
    DUPLICATE,
    OPEN_STK_STATUSES,
    ORDER_NOT_PENDING,
    PAID_AFTER_CANCEL,
    PENDING,
    SEND_UNKNOWN,
    OrderError,
    StkSendFailed,
    _check_receipt_free,
    _lock,
    _order_state,
    _receipt_or_none,
    _safe_raw,
    _set_status,
    callback_url,
    is_latest_stk,
)


def stk_send(*, order: Order, created_by=None) -> StkRequest:
    """Send the M-Pesa PIN prompt for a pending order.

    Three short steps, none holding a lock during HTTP: (1) atomically record a queued
    StkRequest; (2) call the gateway; (3) atomically store its answer (secrets redacted, text
    cleaned). A gateway refusal fails the order with the gateway's readable reason and raises
    StkSendFailed. A send whose fate is unknown (timeout or lost connection after sending) is
    *unknown*, not failed: the order keeps waiting, since the customer may still pay, and a
    callback or till receipt that arrives is matched to it (see callback_process). Then the
    gateway's ``after_send`` hook runs (the simulator queues its simulated callback on commit).
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
        audit_record(
            actor=created_by, action=AuditAction.STK_SEND, obj=stk, after={"order": locked.reference}
        )

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
        # A gateway that plays the customer (the simulator) queues its callback once this commits.
        gateway.after_send(stk.pk)
    return stk


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
        _set_status(order, OrderStatus.FAILED, reason=reason)
        order.save(update_fields=["status", "status_reason", "updated_at"])
    audit_record(
        actor=actor, action=AuditAction.STK_SEND_FAILED, obj=order, before=before, after=_order_state(order)
    )


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
    audit_record(
        actor=actor, action=AuditAction.STK_SEND_UNKNOWN, obj=order, before=before, after=_order_state(order)
    )


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
            _set_status(
                order, OrderStatus.FAILED, reason=describe_result(result.result_code, result.result_desc)
            )
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
            _set_status(order, OrderStatus.NEEDS_REVIEW, reason=clean_text(disagreement))
            books.post_stk_unallocated(order=order, amount=amount, receipt=receipt or "", gateway=stk.gateway)
        elif amount == order.price:
            _set_status(order, OrderStatus.PAID, reason="")
            books.post_stk_payment(order=order, amount=amount, receipt=receipt or "", gateway=stk.gateway)
        else:
            _set_status(
                order, OrderStatus.NEEDS_REVIEW, reason=AMOUNT_MISMATCH.format(paid=amount, price=order.price)
            )
            books.post_stk_unallocated(order=order, amount=amount, receipt=receipt or "", gateway=stk.gateway)
        order.save()
        action = AuditAction.STK_PAID
    elif order.status == OrderStatus.CANCELLED:
        _set_status(order, OrderStatus.NEEDS_REVIEW, reason=PAID_AFTER_CANCEL.format(paid=amount))
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
        _set_status(order, OrderStatus.PAID, reason="")
    else:
        _set_status(
            order, OrderStatus.NEEDS_REVIEW, reason=AMOUNT_MISMATCH.format(paid=amount, price=order.price)
        )
    order.save()
    if order.status == OrderStatus.PAID:
        books.post_claim_verified(order=order, amount=amount, receipt=code)
    after = _order_state(order)
    audit_record(
        actor=None, action=AuditAction.STK_PAID_BY_TILL_RECEIPT, obj=order, before=before, after=after
    )
    return order


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
