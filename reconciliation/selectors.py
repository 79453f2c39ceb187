"""Reads shared by the admin, the dashboard and the exports."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q

from ledger.models import Order
from reconciliation.models import Claim, ClaimReason, ClaimStatus, TillReceipt
from reconciliation.parsers import lookalike_key


def claims_for_admin():
    return Claim.objects.select_related(
        "message", "receipt", "suggested_receipt", "bundle", "order", "decided_by", "held_by"
    )


def claim_candidate_receipts(claim: Claim, *, limit: int = 10) -> list[TillReceipt]:
    """Receipts an agent may verify this claim against: the exact code, the suggestion, and
    unmatched look-alikes paid within three days before the message."""
    found: dict[int, TillReceipt] = {}
    for receipt in TillReceipt.objects.filter(code=claim.code).select_related("order"):
        found[receipt.pk] = receipt
    if claim.suggested_receipt_id:
        found.setdefault(claim.suggested_receipt_id, claim.suggested_receipt)
    key = lookalike_key(claim.code)
    window = TillReceipt.objects.unmatched().filter(
        paid_at__gte=claim.claimed_at - dt.timedelta(days=3),
        paid_at__lte=claim.claimed_at + dt.timedelta(hours=1),
    )
    for receipt in window.only("pk", "code", "amount", "paid_at", "payer_masked", "payer_name", "order_id"):
        if lookalike_key(receipt.code) == key:
            found.setdefault(receipt.pk, receipt)
        if len(found) >= limit:
            break
    return list(found.values())


def claim_code_first_use(claim: Claim) -> dict | None:
    """For a claim whose code was already used: the verified claim that used it first and the
    order it paid ({"claim": Claim | None, "order": Order | None}); None for any other claim."""
    if claim.reason != ClaimReason.CODE_ALREADY_USED or not claim.code:
        return None
    first = (
        Claim.objects.filter(Q(code=claim.code) | Q(receipt__code=claim.code), status=ClaimStatus.VERIFIED)
        .exclude(pk=claim.pk)
        .select_related("order")
        .order_by("decided_at", "pk")
        .first()
    )
    order = first.order if first and first.order_id else None
    if order is None:
        order = Order.objects.filter(mpesa_receipt=claim.code).order_by("pk").first()
    if first is None and order is None:
        return None
    return {"claim": first, "order": order}
