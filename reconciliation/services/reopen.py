"""A reversed till payment reopens what it closed: the claim and the till receipt.

ledger.services.order_payment_reversed runs this hook (registered in ReconciliationConfig.ready)
in the transaction of the reversal, after the order went to needs review. The reversal of a
payment out of Unallocated receipts puts the money back there, so its receipt must be unmatched
again (the suspense list sums to the Unallocated balance) and the claim that spent it must be
decided again by a person.
"""

from __future__ import annotations

from django.utils import timezone

from console.kernel.audit import AuditAction, audit_record
from ledger import books
from reconciliation.models import Claim, ClaimReason, ClaimStatus, TillReceipt

from .claim_status import claim_status_set

CLAIM_PAYMENT_REVERSED = (
    "Payment of order {order} ({entry}) reversed by {who}: {reason}. Receipt {code} is back in "
    "suspense: verify the claim again or reject it."
)


def payment_reversed_reopen(*, order, entry, reason: str, user=None) -> None:
    """Reopen the claim and the till receipt of a reversed payment that came out of Unallocated.

    The receipt paying ``order`` is unmatched again (its money is back in Unallocated receipts by
    the reversal); the claim that verified it needs review with reason payment_reversed, the
    receipt suggested. An STK payment (out of STK clearing) reopens nothing: a till receipt
    settling it stays linked. Locks claim, then receipt (the decisions' order). Audited.
    Runs inside the caller's transaction; idempotent (nothing linked to the order, nothing to do).
    """
    if not entry.postings.filter(account__key=books.UNALLOCATED, amount__gt=0).exists():
        return
    who = user.get_username() if getattr(user, "pk", None) else "the system"
    claim = Claim.objects.select_for_update().filter(order=order).first()
    receipt = TillReceipt.objects.select_for_update().filter(order=order).first()
    if receipt is not None:
        receipt.order = None
        receipt.save(update_fields=["order"])
        audit_record(
            actor=user,
            action=AuditAction.RECEIPT_PAYMENT_REVERSED,
            obj=receipt,
            before={"order": order.reference},
            after={"order": None, "entry": entry.number},
            reason=reason,
        )
    if claim is None:
        return
    before = {"status": claim.status, "reason": claim.reason, "order": order.reference}
    summary = CLAIM_PAYMENT_REVERSED.format(
        order=order.reference, entry=entry.number, who=who, reason=reason, code=entry.receipt_code
    )
    claim_status_set(claim, ClaimStatus.NEEDS_REVIEW)
    claim.reason = ClaimReason.PAYMENT_REVERSED
    claim.suggested_receipt = receipt or claim.receipt
    claim.receipt = None
    claim.order = None
    claim.decided_by = user if getattr(user, "pk", None) else None
    claim.decided_at = timezone.now()
    claim.decision_note = summary
    claim.explanation = {
        **(claim.explanation or {}),
        "summary": summary,
        "reversed": {"order": order.reference, "order_id": order.pk, "entry": entry.number},
    }
    claim.save()
    audit_record(
        actor=user,
        action=AuditAction.CLAIM_PAYMENT_REVERSED,
        obj=claim,
        before=before,
        after={"status": claim.status, "reason": claim.reason, "order": None},
        reason=reason,
    )
