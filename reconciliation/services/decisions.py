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

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from catalog.models import Bundle
from catalog.prices import PriceBook
from console.kernel.audit import AuditAction, audit_event, audit_record, audit_records
from console.kernel.money import ksh
from console.kernel.phones import InvalidPhoneNumber, normalise_msisdn
from console.kernel.rows import rows_update
from ledger import books
from ledger.models import JournalEntry, Order, OrderStatus
from ledger.services import TillOrder, till_order_cancel, till_orders_create_paid
from reconciliation.models import Claim, ClaimStatus, TillReceipt, claim_statuses_allowing

from .claim_status import claim_status_set
from .corrections import claims_superseded_by_many
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


@dataclass
class _Verification:
    claim: Claim
    receipt: TillReceipt
    bundle: Bundle
    price: Decimal
    recipient: str
    note: str
    explanation: dict | None = None


# What a verification changes on the claim (saved by one bulk update for a batch).
_VERIFIED_FIELDS = [
    "code",
    "status",
    "reason",
    "receipt",
    "suggested_receipt",
    "order",
    "bundle",
    "recipient_msisdn",
    "decided_by",
    "decided_at",
    "decision_note",
    "held_by",
    "held_until",
    "explanation",
    "updated_at",
]


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
    if not claim.code:
        # An unreadable report: the person who read it found the receipt; the claim takes its code.
        twin = Claim.objects.filter(sender_msisdn=claim.sender_msisdn, code=receipt.code).exclude(pk=claim.pk)
        twin = twin.values_list("pk", flat=True).first()
        if twin:
            raise VerificationInvalid(ALREADY_CLAIMED_BY_SENDER.format(code=receipt.code, pk=twin))
        claim.code = receipt.code
    row = _Verification(claim, receipt, bundle, price, recipient, note, explanation)
    return _verify_write([row], user)[0]


def _verify_write(rows: list[_Verification], user) -> list[Claim]:
    """Verify locked claims against locked, unused receipts: the paid orders, the receipts tied
    to them, the claims, the claim-verified entries, the audit rows and the sender's superseded
    claims, each written once for all ``rows`` (one claim for a person, a batch for the matcher)."""
    now = timezone.now()
    decider = user if getattr(user, "pk", None) else None
    befores = [_snapshot(row.claim) for row in rows]
    orders = till_orders_create_paid(
        [
            # The order is priced at the bundle's price at payment time, not the whole receipt.
            TillOrder(
                row.bundle,
                row.price,
                row.claim.sender_msisdn,
                row.recipient,
                row.receipt.code,
                row.receipt.paid_at,
            )
            for row in rows
        ],
        user,
    )
    for row, order in zip(rows, orders, strict=True):
        claim = row.claim
        row.receipt.order = order
        claim_status_set(claim, ClaimStatus.VERIFIED)
        claim.reason = ""
        claim.receipt = row.receipt
        claim.suggested_receipt = None
        claim.order = order
        claim.bundle = row.bundle
        claim.recipient_msisdn = row.recipient
        claim.decided_by = decider
        claim.decided_at = now
        claim.decision_note = row.note
        claim_clear_hold(claim)  # a decision ends any hold
        if row.explanation is not None:
            claim.explanation = row.explanation
        claim.updated_at = now
    rows_update([row.receipt for row in rows], ["order"])
    rows_update([row.claim for row in rows], _VERIFIED_FIELDS)
    books.post_claims_verified(
        [(order, row.price, row.receipt.code) for row, order in zip(rows, orders, strict=True)],
        created_by=decider,
    )
    audit_records(
        [
            audit_event(
                actor=user,
                action=AuditAction.CLAIM_VERIFIED,
                obj=row.claim,
                before=before,
                after={
                    **_snapshot(row.claim),
                    "price": str(row.price),
                    "unallocated": str(row.receipt.amount - row.price),
                },
                reason=row.note,
            )
            for row, before in zip(rows, befores, strict=True)
        ]
    )
    claims_superseded_by_many([row.claim for row in rows])  # the earlier failed claims they correct
    return [row.claim for row in rows]


def _auto_note(explanation: dict) -> str:
    return "Verified automatically: " + explanation.get("summary", "")


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
        note=_auto_note(explanation),
        explanation=explanation,
    )


AutoVerification = tuple[int, int, int, dict]  # claim id, receipt id, bundle id, explanation


@transaction.atomic
def claims_verify_auto_many(items: list[AutoVerification]) -> list[AutoVerification]:
    """The matcher's verifications of a batch in one transaction: claim_verify_auto's checks and
    writes for every item, set-based (locks: the claims, then the receipts, each in id order).

    An item that fails a check (claim decided or not open, no code, another payee; receipt used,
    settled, held by an order or an earlier item; bundle gone) is returned and nothing is
    written for it: the caller passes it to claim_verify_auto, which raises the precise reason.
    """
    if not items:
        return []
    claims = {
        c.pk: c for c in Claim.objects.select_for_update().filter(pk__in=[i[0] for i in items]).order_by("pk")
    }
    receipt_ids = [i[1] for i in items]
    receipts = {
        r.pk: r for r in TillReceipt.objects.select_for_update().filter(pk__in=receipt_ids).order_by("pk")
    }
    held = set(
        Claim.objects.filter(receipt_id__in=receipt_ids, status=ClaimStatus.VERIFIED).values_list(
            "receipt_id", flat=True
        )
    )
    codes = [r.code for r in receipts.values()]
    held_codes = set(Order.objects.filter(mpesa_receipt__in=codes).values_list("mpesa_receipt", flat=True))
    bundles = Bundle.objects.in_bulk({i[2] for i in items})
    rows, left, taken = [], [], set()
    for item in items:
        claim_id, receipt_id, bundle_id, explanation = item
        claim, receipt, bundle = claims.get(claim_id), receipts.get(receipt_id), bundles.get(bundle_id)
        if (
            claim is None
            or receipt is None
            or bundle is None
            or claim.status not in OPEN_STATUSES
            or not claim.code
            or other_payee_problem(claim)
            or receipt.order_id
            or receipt.settlement
            or receipt.pk in held
            or receipt.code in held_codes
            or receipt.pk in taken
        ):
            left.append(item)
            continue
        taken.add(receipt.pk)
        note = _auto_note(explanation)
        rows.append(
            _Verification(claim, receipt, bundle, receipt.amount, claim.recipient_msisdn, note, explanation)
        )
    if rows:
        _verify_write(rows, None)
    return left


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
