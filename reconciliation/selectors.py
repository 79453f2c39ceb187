"""Reads shared by the admin, the dashboard and the exports."""

from __future__ import annotations

import datetime as dt

from reconciliation.models import Claim, TillReceipt
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
