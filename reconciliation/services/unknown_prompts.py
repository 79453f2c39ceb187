"""Till receipts that pay an STK prompt whose send never got an answer.

A Buy Goods STK payment lands in the till like any other, so a C2B confirmation or a statement
row can be the only news of a prompt whose send timed out. Such a receipt pays that order when
exactly one open unknown prompt fits it (payer, amount, and a send within STK_EXPIRE_AFTER before
the payment) and that prompt fits no other receipt; otherwise nothing is decided and the receipt
waits for a claim or a person, as any unmatched receipt does.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction

from console.kernel.audit import AuditAction, audit_record
from console.kernel.exceptions import DomainError
from ledger import services as orders
from reconciliation.models import TillReceipt


def _fits(stk, receipt: TillReceipt) -> bool:
    window = timedelta(seconds=settings.STK_EXPIRE_AFTER)
    skew = timedelta(seconds=settings.CLOCK_SKEW_SECONDS)
    return (
        receipt.amount == stk.amount
        and stk.created_at - skew <= receipt.paid_at <= stk.created_at + window
        and orders.payer_fits(receipt.payer_masked, stk.phone)
    )


def unknown_prompts_settle(*, now=None) -> dict[str, int]:
    """Pay each unknown prompt that exactly one unmatched till receipt fits (and vice versa).

    Idempotent and safe alongside the matcher: the receipt and order rows are locked, and a
    receipt already used by a verified claim is skipped.
    """
    counts = {"paid": 0, "ambiguous": 0}
    prompts = orders.unknown_prompts_open(now=now)
    if not prompts:
        return counts
    fits: dict[int, list[TillReceipt]] = {}
    for stk in prompts:
        window = timedelta(seconds=settings.STK_EXPIRE_AFTER + settings.CLOCK_SKEW_SECONDS)
        # A settlement is already a known STK payment reaching the till: never an unknown prompt.
        near = (
            TillReceipt.objects.unmatched()
            .filter(settlement="")
            .filter(
                amount=stk.amount, paid_at__gte=stk.created_at - window, paid_at__lte=stk.created_at + window
            )
        )
        fits[stk.pk] = [r for r in near if _fits(stk, r)]
    claimed_by: dict[int, int] = {}
    for receipts in fits.values():
        for r in receipts:
            claimed_by[r.pk] = claimed_by.get(r.pk, 0) + 1
    for stk in prompts:
        receipts = fits[stk.pk]
        if len(receipts) != 1 or claimed_by[receipts[0].pk] != 1:
            counts["ambiguous"] += bool(receipts)
            continue
        try:
            with transaction.atomic():
                receipt = TillReceipt.objects.select_for_update().get(pk=receipts[0].pk)
                if receipt.order_id:
                    continue
                order = orders.stk_pay_from_till_receipt(
                    stk=stk, code=receipt.code, amount=receipt.amount, paid_at=receipt.paid_at
                )
                receipt.order = order
                receipt.save(update_fields=["order"])
                after = {"order": order.reference}
                audit_record(
                    actor=None, action=AuditAction.RECEIPT_PAYS_UNKNOWN_PROMPT, obj=receipt, after=after
                )
        except DomainError:
            continue
        counts["paid"] += 1
    return counts
