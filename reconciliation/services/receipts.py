"""Till receipts: money paid into our till, from C2B confirmations (c2b.py), statements
(statements.py) and pasted till SMS (here); recording one is receipt_record.py.

Every new receipt posts Dr M-Pesa till / Cr Unallocated receipts through ledger.books, except
one whose code is an STK payment's: that is its settlement, Dr M-Pesa till / Cr STK clearing
(see settlement.py). A receipt
code is unique, so recording the same payment twice (a replayed callback, an overlapping
statement, a re-pasted SMS) adds nothing the second time.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from console.kernel.audit import AuditAction, audit_record
from console.kernel.money import CENT
from reconciliation.models import ReceiptSource
from reconciliation.parsers import parse_till_sms_receipts
from reconciliation.parsers.sms import till_sms_problem

from .c2b import (
    C2B_ALREADY_RECORDED,
    C2B_RECORDED,
    c2b_confirmation_apply,
    c2b_draft,
    c2b_payload,
    receipt_record_c2b,
)
from .errors import (
    ImportRefused,
)
from .receipt_record import ReceiptDraft, receipt_record_one
from .statements import (
    ASYNC_ROWS,
    CHUNK,
    statement_import_create,
    statement_import_now,
    statement_import_resume,
    statement_import_run,
    statement_import_start,
    statement_parse,
    statement_preview,
)

__all__ = [
    "ASYNC_ROWS",
    "C2B_ALREADY_RECORDED",
    "C2B_RECORDED",
    "CHUNK",
    "ReceiptDraft",
    "receipt_record_one",
    "c2b_confirmation_apply",
    "c2b_draft",
    "c2b_payload",
    "receipt_record_c2b",
    "statement_import_create",
    "statement_import_now",
    "statement_import_resume",
    "statement_import_run",
    "statement_import_start",
    "statement_parse",
    "statement_preview",
    "till_sms_drafts",
    "till_sms_import",
]

NO_TILL_SMS = "No till SMS was found. Paste the whole message, from the code to the balance."
TILL_SMS_IMPOSSIBLE = "Nothing was recorded: {count} till SMS cannot be a payment. {problems}."


# ---------------------------------------------------------------------------------------------
# Pasted merchant-side till SMS
# ---------------------------------------------------------------------------------------------
def till_sms_drafts(*, text: str, now: dt.datetime | None = None) -> list[ReceiptDraft]:
    """The receipts the till SMS in ``text`` stand for, checked before anything is saved.

    Raises ImportRefused when no till SMS is found, or when any of them is impossible (dated in
    the future or before TILL_START_DATE, or an amount out of range): then none is recorded.
    Pasted and forwarded SMS both go through here.
    """
    found = parse_till_sms_receipts(text or "")
    if not found:
        raise ImportRefused(NO_TILL_SMS)
    now = now or timezone.now()
    problems = [p for p in (till_sms_problem(sms, now=now) for sms in found) if p]
    if problems:
        listed = "; ".join(p.rstrip(".") for p in problems)
        raise ImportRefused(TILL_SMS_IMPOSSIBLE.format(count=len(problems), problems=listed))
    return [
        ReceiptDraft(
            code=sms.code,
            amount=sms.amount.quantize(CENT),
            paid_at=sms.occurred_at,
            source=ReceiptSource.SMS,
            payer_masked=sms.phone or "",
            payer_name=sms.counterparty or "",
            raw={"sms": sms.code, "counterparty": sms.counterparty, "phone": sms.phone},
        )
        for sms in found
    ]


@transaction.atomic
def till_sms_import(*, text: str, user=None) -> dict:
    """Record every till SMS in ``text``. Atomic; idempotent by code.

    Returns counts {found, new, known, codes_new}. Raises ImportRefused (nothing recorded) when
    no SMS is found or any SMS is impossible (see till_sms_drafts).
    """
    drafts = till_sms_drafts(text=text)
    new = []
    for draft in drafts:
        receipt, created = receipt_record_one(draft)
        if created:
            new.append(receipt)
            audit_record(
                actor=user,
                action=AuditAction.RECEIPT_SMS_RECORDED,
                obj=receipt,
                after={"amount": receipt.amount},
            )
    return {
        "found": len(drafts),
        "new": len(new),
        "known": len(drafts) - len(new),
        "codes_new": [r.code for r in new],
    }
