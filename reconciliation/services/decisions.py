"""Decisions on a claim: verify (by the matcher or an agent), reject, undo a verification.

Every decision locks the claim row first, then the receipt row (always in that order), checks
the status again under the lock, and writes its audit row in the same transaction. The unique
constraints (one verified claim per receipt, one order per receipt) are the last defence.

A receipt pays for a bundle whose price at payment time is at most its amount: the order is
priced at that price, the claim-verified entry moves only the price from Unallocated receipts to
Bundles owed, and any overpayment stays in Unallocated on that receipt. The matcher verifies
exact prices only; an agent may verify an overpayment, never an underpayment.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from catalog.models import Bundle
from catalog.prices import PriceBook
from console.kernel.audit import AuditAction, audit_record
from console.kernel.money import ksh
from console.kernel.phones import InvalidPhoneNumber, normalise_msisdn
from ledger import books
from ledger.models import JournalEntry, Order, OrderStatus
from ledger.services import till_order_cancel, till_order_create_paid
from reconciliation.models import Claim, ClaimStatus, TillReceipt, claim_statuses_allowing

from .claim_status import claim_status_set
from .corrections import claims_superseded_by
from .errors import (
    ALREADY_CLAIMED_BY_SENDER,
    AMOUNT_RETYPE_MISMATCH,
    BUNDLE_REQUIRED,
    CLAIM_ALREADY_DECIDED,
    CLAIM_NOT_OPEN,
    CODE_USED_NO_VERIFY,
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
from .evaluate import other_payee_problem
from .queue import claim_check_hold, claim_clear_hold
from .replies import REJECT_REASON_LABELS, whatsapp_reply  # noqa: F401 (whatsapp_reply: callers' name)

OPEN_STATUSES = claim_statuses_allowing("verify")
RECEIPT_SHORT = (
    "Receipt {code} of {amount} is {short} short of {bundle} ({price} when it was paid); "
    "pick a bundle the receipt pays for."
)
BUNDLE_NOT_ON_SALE = "{bundle} is not on sale; pick one of the bundles offered."


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
    # One M-Pesa code is one payment across every channel: a code an order already holds (an STK
    # payment reaching the till) can never pay a second order.
    holder = Order.objects.filter(mpesa_receipt=receipt.code).values_list("reference", flat=True).first()
    if holder or receipt.settlement:
        raise ReceiptAlreadyUsed(
            RECEIPT_ALREADY_USED.format(code=receipt.code, order=holder or "an STK payment")
        )
    return receipt


def _verify_locked(
    *,
    claim: Claim,
    receipt: TillReceipt,
    bundle: Bundle,
    price: Decimal,
    recipient: str,
    user,
    note: str,
    explanation=None,
) -> Claim:
    """Create the paid order at ``price`` (at most the receipt's amount) and book it; what the
    receipt paid beyond the price stays in Unallocated receipts."""
    before = _snapshot(claim)
    if not claim.code:
        # An unreadable report: the person who read it found the receipt; the claim takes its code.
        twin = Claim.objects.filter(sender_msisdn=claim.sender_msisdn, code=receipt.code).exclude(pk=claim.pk)
        twin = twin.values_list("pk", flat=True).first()
        if twin:
            raise VerificationInvalid(ALREADY_CLAIMED_BY_SENDER.format(code=receipt.code, pk=twin))
        claim.code = receipt.code
    now = timezone.now()
    order = till_order_create_paid(
        bundle=bundle,
        price=price,  # the bundle's price at payment time, not the whole receipt
        payer=claim.sender_msisdn,
        recipient=recipient,
        receipt_code=receipt.code,
        paid_at=receipt.paid_at,
        created_by=user,
    )
    receipt.order = order
    receipt.save(update_fields=["order"])
    claim_status_set(claim, ClaimStatus.VERIFIED)
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
    books.post_claim_verified(order=order, amount=price, receipt=receipt.code, created_by=claim.decided_by)
    after = {**_snapshot(claim), "price": str(price), "unallocated": str(receipt.amount - price)}
    audit_record(
        actor=user, action=AuditAction.CLAIM_VERIFIED, obj=claim, before=before, after=after, reason=note
    )
    claims_superseded_by(claim)  # the sender's earlier failed claim this one corrects
    return claim


@transaction.atomic
def claim_verify_auto(*, claim_id: int, receipt_id: int, bundle_id: int, explanation: dict) -> Claim:
    """The matcher's verification. Atomic and idempotent: a claim already decided or a receipt
    already used raises (ClaimAlreadyDecided / ReceiptAlreadyUsed) and changes nothing. A claim
    whose pasted SMS names another payee is never verified automatically (VerificationInvalid);
    the matcher sends it to review before it gets here."""
    claim = _lock_open_claim(claim_id, "verified")
    problem = other_payee_problem(claim)
    if problem:
        raise VerificationInvalid(problem)
    receipt = _lock_unused_receipt(receipt_id)
    bundle = Bundle.objects.get(pk=bundle_id)
    return _verify_locked(
        claim=claim,
        receipt=receipt,
        bundle=bundle,
        price=receipt.amount,  # the matcher verifies only an exact price
        recipient=claim.recipient_msisdn,
        user=None,
        note="Verified automatically: " + explanation.get("summary", ""),
        explanation=explanation,
    )


def receipt_code_normalise(text: str | None) -> str:
    return (text or "").strip().upper().replace(" ", "")


def verify_offer(receipt_code: str | None) -> tuple[TillReceipt | None, list[tuple[Bundle, Decimal]]]:
    """The receipt an agent typed and the bundles it pays for (none when no such receipt)."""
    receipt = TillReceipt.objects.filter(code=receipt_code_normalise(receipt_code)).first()
    return receipt, (receipt_bundles(receipt) if receipt else [])


def receipt_bundles(receipt: TillReceipt, prices=None) -> list[tuple[Bundle, Decimal]]:
    """The bundles on sale that ``receipt`` pays for: (bundle, price at payment time), each price
    at most the receipt's amount. What the verify form offers; read-only."""
    prices = prices or PriceBook.load()
    priced = ((bundle, prices.price_at(bundle, receipt.paid_at)) for bundle in prices.bundles)
    return [(bundle, price) for bundle, price in priced if price <= receipt.amount]


def _bundle_the_receipt_pays(receipt: TillReceipt, bundle_id: int, prices) -> tuple[Bundle, Decimal]:
    """The picked bundle and its price at payment time, refused unless it is on sale and the
    receipt covers the price (whatever the form offered: this is the rule, not the page)."""
    bundle = next((b for b in prices.bundles if b.pk == bundle_id), None)
    if bundle is None:
        name = Bundle.objects.filter(pk=bundle_id).values_list("name", flat=True).first()
        raise VerificationInvalid(BUNDLE_NOT_ON_SALE.format(bundle=name or f"Bundle #{bundle_id}"))
    price = prices.price_at(bundle, receipt.paid_at)
    if price > receipt.amount:
        raise VerificationInvalid(
            RECEIPT_SHORT.format(
                code=receipt.code,
                amount=ksh(receipt.amount),
                short=ksh(price - receipt.amount),
                bundle=bundle.name,
                price=ksh(price),
            )
        )
    return bundle, price


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

    The bundle is the one picked (its price at payment time at most the receipt's amount; any
    overpayment stays unallocated on the receipt) or, when none is picked, the one bundle whose
    price is exactly the amount. Atomic. Raises ClaimAlreadyDecided (someone else was first),
    ReceiptNotFound, ReceiptAlreadyUsed, VerificationInvalid (amount, bundle or recipient do not
    add up: RECEIPT_SHORT for a bundle dearer than the receipt, BUNDLE_NOT_ON_SALE).
    """
    claim = _lock_open_claim(claim_id, "verified")
    if not claim.can("verify"):
        raise VerificationInvalid(CODE_USED_NO_VERIFY.format(code=claim.code))
    claim_check_hold(claim=claim, user=user)
    code = receipt_code_normalise(receipt_code)
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
    prices = PriceBook.load()
    if bundle_id:
        bundle, price = _bundle_the_receipt_pays(receipt, int(bundle_id), prices)
    else:
        matches = prices.matching(receipt.amount, receipt.paid_at)
        if len(matches) != 1:
            why = "no bundle costs this amount" if not matches else "several bundles cost this amount"
            raise VerificationInvalid(BUNDLE_REQUIRED.format(reason=why))
        bundle, price = matches[0], receipt.amount
    return _verify_locked(
        claim=claim,
        receipt=receipt,
        bundle=bundle,
        price=price,
        recipient=recipient,
        user=user,
        note=note or f"Verified by {user.get_username()} against {receipt.code}",
    )


@transaction.atomic
def claim_reject(*, claim_id: int, reason: str, user, reply_reason: str = "other") -> Claim:
    """A person rejects a claim with a note for staff (``reason``) and the reason the customer is
    told (``reply_reason``, a key of replies.REJECT_REASONS). Atomic; raises ClaimAlreadyDecided /
    VerificationInvalid."""
    if not (reason or "").strip():
        raise VerificationInvalid(REASON_REQUIRED)
    if reply_reason not in REJECT_REASON_LABELS:
        raise VerificationInvalid(REASON_REQUIRED)
    claim = _lock_open_claim(claim_id, "rejected")
    claim_check_hold(claim=claim, user=user)
    before = _snapshot(claim)
    claim_status_set(claim, ClaimStatus.REJECTED)
    claim_clear_hold(claim)
    claim.decided_by = user
    claim.decided_at = timezone.now()
    claim.decision_note = reason.strip()
    claim.explanation = {**(claim.explanation or {}), "reject_reason": reply_reason}
    claim.save()
    audit_record(
        actor=user,
        action=AuditAction.CLAIM_REJECTED,
        obj=claim,
        before=before,
        after={**_snapshot(claim), "reply_reason": reply_reason},
        reason=reason,
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
        # This function settles the order, claim and receipt itself (cancelled, not needs review).
        books.post_reversal(entry=entry, reason=f"Claim verification undone: {reason}", user=user)
    order = till_order_cancel(  # gives up the receipt: it may pay a corrected order later
        order=order, reason=f"Claim verification undone by {user.get_username()}: {reason}", actor=user
    )
    receipt.order = None
    receipt.save(update_fields=["order"])
    claim_status_set(claim, ClaimStatus.NEEDS_REVIEW)
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
        action=AuditAction.CLAIM_VERIFICATION_UNDONE,
        obj=claim,
        before=before,
        after=_snapshot(claim),
        reason=reason,
    )
    return claim
