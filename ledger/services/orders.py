"""Orders: create (and check out by STK), send again, cancel, deliver, refund, follow a reversed
payment, and the paid till orders a verified claim creates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog.models import Bundle
from console.kernel.audit import AuditAction, audit_event, audit_record, audit_records
from console.kernel.phones import InvalidPhoneNumber, normalise_msisdn, phone_display
from console.kernel.plausible import clean_text
from ledger import books
from ledger.models import Channel, Order, OrderStatus, StkRequest, StkStatus

from .common import (
    BUNDLE_NOT_AVAILABLE,
    ORDER_NOT_CANCELLABLE,
    ORDER_NOT_DELIVERABLE,
    ORDER_NOT_RETRYABLE,
    PROMPT_ALREADY_WAITING,
    PROMPT_STILL_ANSWERABLE,
    PROMPT_STILL_WAITING,
    BundleNotAvailable,
    InvalidOrderPhone,
    OrderError,
    OrderNotCancellable,
    OrderNotDeliverable,
    OrderNotRetryable,
    PromptAlreadyWaiting,
    StkSendFailed,
    _lock,
    _order_state,
    _set_status,
)
from .stk import stk_send


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
                    bundle=bundle, phone=phone_display(payer), seconds=seconds, reference=waiting.reference
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
        action=AuditAction.ORDER_CREATE,
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
        _set_status(locked, OrderStatus.PENDING_PAYMENT, reason="")
        locked.save(update_fields=["status", "status_reason", "updated_at"])
        audit_record(
            actor=created_by,
            action=AuditAction.ORDER_RETRY,
            obj=locked,
            before=before,
            after=_order_state(locked),
        )
    return stk_send(order=locked, created_by=created_by)


def order_cancellable(order: Order) -> bool:
    """Staff cancel only an order still waiting for payment (a paid till order is cancelled by
    undoing its claim's verification, see till_order_cancel)."""
    return order.status == OrderStatus.PENDING_PAYMENT and order.can_become(OrderStatus.CANCELLED)


@transaction.atomic
def order_cancel(*, order: Order, actor, reason: str = "") -> Order:
    """Cancel an order still waiting for payment. A payment arriving later is held for review."""
    locked, _ = _lock(order.pk)
    if not order_cancellable(locked):
        raise OrderNotCancellable(ORDER_NOT_CANCELLABLE)
    before = _order_state(locked)
    _set_status(locked, OrderStatus.CANCELLED, reason=reason or "Cancelled by staff")
    locked.save(update_fields=["status", "status_reason", "updated_at"])
    audit_record(
        actor=actor,
        action=AuditAction.ORDER_CANCEL,
        obj=locked,
        before=before,
        after=_order_state(locked),
        reason=reason,
    )
    return locked


def delivery_reply(order: Order) -> str:
    """The WhatsApp reply an agent copies once the bundle is loaded."""
    text = f"Your {order.bundle.data_label} bundle for {phone_display(order.recipient_msisdn)} is now active."
    if order.mpesa_receipt:
        text += f" Receipt {order.mpesa_receipt}."
    # Signed like the claim replies (reconciliation.services.replies).
    return f"{text} - {getattr(settings, 'SHOP_NAME', '') or 'us'}"


@transaction.atomic
def order_mark_delivered(*, order: Order, actor) -> str:
    """paid -> delivered, at most once; books the sale. Returns the WhatsApp reply text.

    Atomic and locked: two agents clicking at once deliver (and book) once; the second gets
    OrderNotDeliverable.
    """
    locked, _ = _lock(order.pk)
    if not locked.can_become(OrderStatus.DELIVERED):
        raise OrderNotDeliverable(ORDER_NOT_DELIVERABLE)
    before = _order_state(locked)
    _set_status(locked, OrderStatus.DELIVERED)
    locked.delivered_at = timezone.now()
    locked.delivered_by = actor if getattr(actor, "pk", None) else None
    locked.save(update_fields=["status", "delivered_at", "delivered_by", "updated_at"])
    books.post_delivery(order=locked, created_by=locked.delivered_by)
    audit_record(
        actor=actor, action=AuditAction.ORDER_DELIVER, obj=locked, before=before, after=_order_state(locked)
    )
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
def entry_reverse(*, entry, reason: str, user=None):
    """Reverse a journal entry (books.post_reversal); when it was an order's payment, the order
    follows in the same transaction (order_payment_reversed: needs review; a till order's claim
    and receipt are reopened). Reversing twice returns the first reversal and moves nothing.
    Raises books.ReasonRequired and books.EntryNotReversible; writes nothing then."""
    reversal, posted = books.post_reversal(entry=entry, reason=reason, user=user)
    if posted and books.pays_order(entry):
        order_payment_reversed(order=entry.order, entry=entry, reason=reason, user=user)
    return reversal


@transaction.atomic
def order_payment_reversed(*, order: Order, entry, reason: str, user=None) -> Order:
    """The order follows the reversal of its payment ``entry`` (entry_reverse calls this in the
    same transaction, after posting the reversal).

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
    _set_status(
        locked,
        OrderStatus.NEEDS_REVIEW,
        reason=clean_text(PAYMENT_REVERSED.format(entry=entry.number, who=who, reason=reason), 255),
    )
    fields = ["status", "status_reason", "updated_at"]
    if entry.postings.filter(account__key=books.UNALLOCATED, amount__gt=0).exists():
        locked.mpesa_receipt = None  # the code belongs to its till receipt again, back in suspense
        fields.append("mpesa_receipt")
    locked.save(update_fields=fields)
    audit_record(
        actor=user,
        action=AuditAction.ORDER_PAYMENT_REVERSED,
        obj=locked,
        before=before,
        after={**_order_state(locked), "entry": entry.number},
        reason=reason,
    )
    for hook in _PAYMENT_REVERSED_HOOKS:
        hook(order=locked, entry=entry, reason=reason, user=user)
    return locked


# ---------------------------------------------------------------------------------------------
# Checkout by STK: the storefront's Pay button and the agents' "New STK push" both end here
# ---------------------------------------------------------------------------------------------
@dataclass
class Checkout:
    """An order created and its prompt sent: ``failed`` holds the gateway's reason when the
    prompt was refused (the order is then failed); an unknown send leaves the order waiting."""

    order: Order
    stk: StkRequest | None
    failed: str = ""

    @property
    def unknown(self) -> bool:
        return self.stk is not None and self.stk.status == StkStatus.UNKNOWN


def stk_checkout(*, bundle: Bundle, payer_msisdn: str, recipient_msisdn: str | None = None, created_by=None):
    """Create an STK order at the catalogue price and send its PIN prompt.

    Raises BundleNotAvailable, InvalidOrderPhone (with `field`) or PromptAlreadyWaiting (with the
    waiting `order`) and then writes and sends nothing. A prompt the gateway refused does not
    raise: the order exists, failed, and Checkout.failed says why. The order is read back fresh.
    """
    order = order_create(
        bundle=bundle, payer_msisdn=payer_msisdn, recipient_msisdn=recipient_msisdn, created_by=created_by
    )
    try:
        stk = stk_send(order=order, created_by=created_by)
    except StkSendFailed as exc:
        order.refresh_from_db()
        return Checkout(order=order, stk=None, failed=exc.message)
    order.refresh_from_db()
    return Checkout(order=order, stk=stk)


# ---------------------------------------------------------------------------------------------
# Refunds
# ---------------------------------------------------------------------------------------------
@transaction.atomic
def order_refund(*, order: Order, reason: str, user):
    """Refund a paid or delivered order: the books post the refund (books.post_refund) and the
    order becomes `refunded`. Returns the refund's journal entry.

    Atomic (order row locked, entry, status and audit row commit together). Raises
    books.ReasonRequired, books.OrderAlreadyRefunded, books.OrderNotRefundable, books.InvalidEntry;
    writes nothing then.
    """
    reason = (reason or "").strip()
    if not reason:
        raise books.ReasonRequired(books.REASON_REQUIRED)
    locked, _ = _lock(order.pk)
    if locked.status == OrderStatus.REFUNDED:
        raise books.OrderAlreadyRefunded(books.ORDER_ALREADY_REFUNDED)
    if not locked.can_become(OrderStatus.REFUNDED):
        status = locked.get_status_display().lower()
        raise books.OrderNotRefundable(books.ORDER_NOT_REFUNDABLE.format(status=status))
    amount = locked.amount_paid or locked.price
    entry = books.post_refund(order=locked, reason=reason, user=user)
    before = {"status": locked.status}
    _set_status(locked, OrderStatus.REFUNDED, reason=reason)
    locked.save(update_fields=["status", "status_reason", "updated_at"])
    audit_record(
        actor=user,
        action=AuditAction.ORDER_REFUND,
        obj=locked,
        before=before,
        after={"status": locked.status, "entry": entry.number, "amount": amount},
        reason=reason,
    )
    order.status, order.status_reason = locked.status, locked.status_reason
    return entry


# ---------------------------------------------------------------------------------------------
# Till orders: created paid when a claim is verified, cancelled when that verification is undone
# ---------------------------------------------------------------------------------------------
@transaction.atomic
def till_order_create_paid(
    *, bundle: Bundle, price, payer: str, recipient: str, receipt_code: str, paid_at, created_by
):
    """A paid till order for a verified claim: ``price`` is the part of the till receipt this order
    used (delivery and refund move this much, no more). Audited; booking is the caller's."""
    return till_orders_create_paid(
        [TillOrder(bundle, price, payer, recipient, receipt_code, paid_at)], created_by
    )[0]


@dataclass(frozen=True)
class TillOrder:
    """What a verified claim's order is made of (till_orders_create_paid)."""

    bundle: Bundle
    price: object
    payer: str
    recipient: str
    receipt_code: str
    paid_at: object


@transaction.atomic
def till_orders_create_paid(rows: list[TillOrder], created_by) -> list[Order]:
    """The paid till orders of claims verified together (a matcher batch): one insert for the
    orders and one for their audit rows, in ``rows``' order. What till_order_create_paid does
    for one."""
    creator = created_by if getattr(created_by, "pk", None) else None
    orders = Order.objects.bulk_create(
        [
            Order(
                bundle=row.bundle,
                price=row.price,
                payer_msisdn=row.payer,
                recipient_msisdn=row.recipient,
                channel=Channel.TILL,
                status=OrderStatus.PAID,
                mpesa_receipt=row.receipt_code,
                amount_paid=row.price,
                paid_at=row.paid_at,
                created_by=creator,
            )
            for row in rows
        ]
    )
    if any(order.pk is None for order in orders):  # a database that cannot return ids from bulk inserts
        ids = dict(
            Order.objects.filter(reference__in=[o.reference for o in orders]).values_list("reference", "pk")
        )
        for order in orders:
            order.pk = ids[order.reference]
    audit_records(
        [
            audit_event(
                actor=created_by,
                action=AuditAction.ORDER_CREATE,
                obj=order,
                after={
                    **_order_state(order),
                    "bundle": row.bundle.slug,
                    "price": row.price,
                    "channel": Channel.TILL,
                },
            )
            for order, row in zip(orders, rows, strict=True)
        ]
    )
    return orders


@transaction.atomic
def till_order_cancel(*, order: Order, reason: str, actor) -> Order:
    """Cancel a paid till order whose claim's verification is undone: it gives up its receipt
    (which may pay a corrected order later). Locked; raises OrderTransitionRefused unless the order
    may become cancelled. Audited."""
    locked, _ = _lock(order.pk)
    before = _order_state(locked)
    _set_status(locked, OrderStatus.CANCELLED, reason=reason)
    locked.mpesa_receipt = None
    locked.save(update_fields=["status", "status_reason", "mpesa_receipt", "updated_at"])
    audit_record(
        actor=actor, action=AuditAction.ORDER_CANCEL, obj=locked, before=before, after=_order_state(locked)
    )
    return locked
