"""Recording till receipts: one draft per payment, one insert per code, booked and matched.

Every new receipt posts Dr M-Pesa till / Cr Unallocated receipts through ledger.books, except
one whose code is an STK payment's: that is its settlement, Dr M-Pesa till / Cr STK clearing
(see settlement.py). A receipt code is unique, so recording the same payment twice (a replayed
callback, an overlapping statement, a re-pasted SMS) adds nothing the second time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import IntegrityError, transaction

from ledger import books
from reconciliation.models import TillReceipt

from .matcher import reconcile_later
from .settlement import settlements_book, settlements_prepare


@dataclass(frozen=True)
class ReceiptDraft:
    code: str
    amount: Decimal
    paid_at: dt.datetime
    source: str
    payer_masked: str = ""
    payer_name: str = ""
    raw: dict = field(default_factory=dict)

    def as_model(self, statement_import=None) -> TillReceipt:
        return TillReceipt(
            code=self.code,
            amount=self.amount,
            paid_at=self.paid_at,
            source=self.source,
            payer_masked=(self.payer_masked or "")[:80],
            payer_name=(self.payer_name or "")[:120],
            raw=self.raw,
            statement_import=statement_import,
        )


def receipts_post_and_reconcile(
    receipts: list[TillReceipt], payments: dict | None = None, *, reconcile: bool = True
) -> None:
    """Book each new receipt (idempotent by code) and re-run matching for their codes after commit
    (unless ``reconcile`` is off: a statement import queues one run for all its chunks).

    A receipt marked as an STK settlement (settlement.settlements_prepare, before the insert; its
    payment in ``payments``) books Dr M-Pesa till / Cr STK clearing; every other one
    Dr M-Pesa till / Cr Unallocated receipts. Both set-based.
    """
    books.post_till_receipts_bulk([(r.code, r.amount, r.paid_at) for r in receipts if not r.settlement])
    settlements_book([r for r in receipts if r.settlement], payments or {})
    codes = [r.code for r in receipts]
    if codes and reconcile:
        reconcile_later(trigger="receipt", codes=codes)


def receipt_record_one(draft: ReceiptDraft) -> tuple[TillReceipt, bool]:
    """Insert one receipt unless its code is known. Returns (receipt, created). Atomic.

    A code that is an STK payment's is recorded as that payment's settlement (see settlement.py).
    """
    with transaction.atomic():
        existing = TillReceipt.objects.filter(code=draft.code).first()
        if existing:
            return existing, False
        receipt = draft.as_model()
        payments = settlements_prepare([receipt])
        try:
            with transaction.atomic():
                receipt.save()
        except IntegrityError:
            # A concurrent delivery of the same payment won; ours is the duplicate.
            return TillReceipt.objects.get(code=draft.code), False
        receipts_post_and_reconcile([receipt], payments)
        return receipt, True
