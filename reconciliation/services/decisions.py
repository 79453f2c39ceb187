"""Decisions on a claim: verify (by the matcher or an agent), reject, undo a verification.

Every decision locks the claim row first, then the receipt row (always in that order), checks
the status again under the lock, and writes its audit row in the same transaction. The unique
constraints (one verified claim per receipt, one order per receipt) are the last defence.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog.models import Bundle
from console.audit import audit_record
from console.phones import InvalidPhoneNumber, normalise_msisdn
from ledger import books
from ledger.models import Channel, JournalEntry, Order, OrderStatus
from reconciliation.models import Claim, ClaimStatus, TillReceipt

from .errors import (
    AMOUNT_RETYPE_MISMATCH,
    BUNDLE_REQUIRED,
    CLAIM_ALREADY_DECIDED,
    CLAIM_NOT_OPEN,
    NOT_VERIFIED,
    ORDER_DELIVERED,
    REASON_REQUIRED,
    RECEIPT_ALREADY_USED,
    RECEIPT_NOT_FOUND,
    RECIPIENT_REQUIRED,
    ClaimAlreadyDecided,
    ClaimNotOpen,
    ReceiptAlreadyUsed,
    ReceiptNotFound,
    VerificationInvalid,
)
from .queue import claim_check_hold, claim_clear_hold

OPEN_STATUSES = (ClaimStatus.PENDING, ClaimStatus.NEEDS_REVIEW)


def _snapshot(claim: Claim) -> dict:
    return {
        "status": claim.status,
        "reason": claim.reason,
        "receipt": claim.receipt.code if claim.receipt_id else None,
        "order": claim.order.reference if claim.order_id else None,
        "bundle": claim.bundle_id,
        "recipient": claim.recipient_msisdn,
    }


def _lock_open_claim(claim_id: int, action: str) -> Claim:
    claim = Claim.objects.select_for_update().get(pk=claim_id)
    if claim.status in (ClaimStatus.VERIFIED, ClaimStatus.REJECTED):
        who = claim.decided_by.get_username() if claim.decided_by_id else "the matcher"
        when = timezone.localtime(claim.decided_at).strftime("%H:%M") if claim.decided_at else "?"
        raise ClaimAlreadyDecided(
            CLAIM_ALREADY_DECIDED.format(status=claim.get_status_display().lower(), who=who, when=when)
        )
    if claim.status not in OPEN_STATUSES:
        raise ClaimNotOpen(CLAIM_NOT_OPEN.format(action=action, status=claim.get_status_display().lower()))
    return claim


def _lock_unused_receipt(receipt_id: int) -> TillReceipt:
    receipt = TillReceipt.objects.select_for_update().get(pk=receipt_id)
    if receipt.order_id or Claim.objects.filter(receipt=receipt, status=ClaimStatus.VERIFIED).exists():
        order = receipt.order.reference if receipt.order_id else "?"
        raise ReceiptAlreadyUsed(RECEIPT_ALREADY_USED.format(code=receipt.code, order=order))
    return receipt


def _verify_locked(
    *, claim: Claim, receipt: TillReceipt, bundle: Bundle, recipient: str, user, note: str, explanation=None
) -> Claim:
    before = _snapshot(claim)
    now = timezone.now()
    order = Order.objects.create(
        bundle=bundle,
        price=receipt.amount,  # the snapshot is what was actually paid
        payer_msisdn=claim.sender_msisdn,
        recipient_msisdn=recipient,
        channel=Channel.TILL,
        status=OrderStatus.PAID,
        mpesa_receipt=receipt.code,
        amount_paid=receipt.amount,
        paid_at=receipt.paid_at,
        created_by=user if getattr(user, "pk", None) else None,
    )
    receipt.order = order
    receipt.save(update_fields=["order"])
    claim.status = ClaimStatus.VERIFIED
    claim.reason = ""
    claim.receipt = receipt
    claim.suggested_receipt = None
    claim.order = order
    claim.bundle = bundle
    claim.recipient_msisdn = recipient
    claim.decided_by = user if getattr(user, "pk", None) else None
    claim.decided_at = now
    claim.decision_note = note
    claim_clear_hold(claim)  # a decision ends any hold
    if explanation is not None:
        claim.explanation = explanation
    claim.save()
    books.post_claim_verified(
        order=order, amount=receipt.amount, receipt=receipt.code, created_by=claim.decided_by
    )
    audit_record(
        actor=user, action="claim.verified", obj=claim, before=before, after=_snapshot(claim), reason=note
    )
    return claim


@transaction.atomic
def claim_verify_auto(*, claim_id: int, receipt_id: int, bundle_id: int, explanation: dict) -> Claim:
    """The matcher's verification. Atomic and idempotent: a claim already decided or a receipt
    already used raises (ClaimAlreadyDecided / ReceiptAlreadyUsed) and changes nothing."""
    claim = _lock_open_claim(claim_id, "verified")
    receipt = _lock_unused_receipt(receipt_id)
    bundle = Bundle.objects.get(pk=bundle_id)
    return _verify_locked(
        claim=claim,
        receipt=receipt,
        bundle=bundle,
        recipient=claim.recipient_msisdn,
        user=None,
        note="Verified automatically: " + explanation.get("summary", ""),
        explanation=explanation,
    )


@transaction.atomic
def claim_verify(
    *,
    claim_id: int,
    receipt_code: str,
    amount: str | Decimal,
    user,
    bundle_id: int | None = None,
    recipient: str | None = None,
    note: str = "",
) -> Claim:
    """An agent verifies a claim against a receipt, re-typing the amount to confirm.

    Atomic. Raises ClaimAlreadyDecided (someone else was first), ReceiptNotFound,
    ReceiptAlreadyUsed, VerificationInvalid (amount, bundle or recipient do not add up).
    """
    from reconciliation.services.matcher import bundles_for_amount

    claim = _lock_open_claim(claim_id, "verified")
    claim_check_hold(claim=claim, user=user)
    code = (receipt_code or "").strip().upper().replace(" ", "")
    receipt_id = TillReceipt.objects.filter(code=code).values_list("pk", flat=True).first()
    if receipt_id is None:
        raise ReceiptNotFound(RECEIPT_NOT_FOUND.format(code=code or "(blank)"))
    receipt = _lock_unused_receipt(receipt_id)
    try:
        typed = Decimal(str(amount).replace(",", "").strip())
    except InvalidOperation:
        typed = None
    if typed is None or typed != receipt.amount:
        raise VerificationInvalid(AMOUNT_RETYPE_MISMATCH.format(typed=amount))
    try:
        recipient = normalise_msisdn(recipient or claim.recipient_msisdn)
    except InvalidPhoneNumber:
        raise VerificationInvalid(RECIPIENT_REQUIRED)
    if bundle_id:
        bundle = Bundle.objects.get(pk=bundle_id)
    else:
        matches = bundles_for_amount(receipt.amount, receipt.paid_at)
        if len(matches) != 1:
            why = "no bundle costs this amount" if not matches else "several bundles cost this amount"
            raise VerificationInvalid(BUNDLE_REQUIRED.format(reason=why))
        bundle = matches[0]
    return _verify_locked(
        claim=claim,
        receipt=receipt,
        bundle=bundle,
        recipient=recipient,
        user=user,
        note=note or f"Verified by {user.get_username()} against {receipt.code}",
    )


@transaction.atomic
def claim_reject(*, claim_id: int, reason: str, user) -> Claim:
    """A person rejects a claim with a reason. Atomic; raises ClaimAlreadyDecided / VerificationInvalid."""
    if not (reason or "").strip():
        raise VerificationInvalid(REASON_REQUIRED)
    claim = _lock_open_claim(claim_id, "rejected")
    claim_check_hold(claim=claim, user=user)
    before = _snapshot(claim)
    claim.status = ClaimStatus.REJECTED
    claim_clear_hold(claim)
    claim.decided_by = user
    claim.decided_at = timezone.now()
    claim.decision_note = reason.strip()
    claim.save()
    audit_record(
        actor=user, action="claim.rejected", obj=claim, before=before, after=_snapshot(claim), reason=reason
    )
    return claim


@transaction.atomic
def claim_verification_undo(*, claim_id: int, reason: str, user) -> Claim:
    """Finance undoes a verification: the order is cancelled, the receipt unlinked (back in
    suspense) and the claim-verified journal entry reversed. Atomic.

    Raises VerificationInvalid (no reason), ClaimNotOpen (not verified), ReceiptAlreadyUsed-like
    refusal when the order was already delivered (refund instead).
    """
    if not (reason or "").strip():
        raise VerificationInvalid(REASON_REQUIRED)
    claim = Claim.objects.select_for_update().get(pk=claim_id)
    if claim.status != ClaimStatus.VERIFIED or not claim.order_id:
        raise ClaimNotOpen(NOT_VERIFIED.format(status=claim.get_status_display().lower()))
    order = Order.objects.select_for_update().get(pk=claim.order_id)
    if order.status != OrderStatus.PAID:
        raise ClaimNotOpen(ORDER_DELIVERED.format(order=order.reference))
    receipt = TillReceipt.objects.select_for_update().get(pk=claim.receipt_id)
    before = _snapshot(claim)
    entry = JournalEntry.objects.filter(idempotency_key=f"claim_verified:{order.reference}").first()
    if entry is not None:
        books.entry_reverse(entry=entry, reason=f"Claim verification undone: {reason}", user=user)
    order.status = OrderStatus.CANCELLED
    order.status_reason = f"Claim verification undone by {user.get_username()}: {reason}"[:255]
    order.mpesa_receipt = None  # the receipt may pay a corrected order later
    order.save(update_fields=["status", "status_reason", "mpesa_receipt", "updated_at"])
    receipt.order = None
    receipt.save(update_fields=["order"])
    claim.status = ClaimStatus.NEEDS_REVIEW
    claim.reason = ""
    claim.suggested_receipt = receipt
    claim.receipt = None
    claim.order = None
    claim.decided_by = user
    claim.decided_at = timezone.now()
    claim.decision_note = f"Verification undone: {reason.strip()} (order {order.reference} cancelled)"
    claim.save()
    audit_record(
        actor=user,
        action="claim.verification_undone",
        obj=claim,
        before=before,
        after=_snapshot(claim),
        reason=reason,
    )
    return claim


def whatsapp_reply(claim: Claim) -> str:
    """The text an agent copies back to the customer."""
    shop = getattr(settings, "SHOP_NAME", "us")
    if claim.status == ClaimStatus.VERIFIED and claim.bundle_id:
        return (
            f"Thank you! We received your payment {claim.code} of KES {claim.receipt.amount:,.0f}. "
            f"Your {claim.bundle.name} bundle for 0{claim.recipient_msisdn[3:]} is being loaded "
            f"(order {claim.order.reference}). - {shop}"
        )
    if claim.status == ClaimStatus.REJECTED:
        return (
            f"Sorry, we could not confirm payment {claim.code}: {claim.decision_note}. "
            f"Please send the full M-Pesa message so we can check again. - {shop}"
        )
    return (
        f"Thank you, we have your message about {claim.code}. We are checking the payment "
        f"and will load your bundle as soon as it is confirmed. - {shop}"
    )
