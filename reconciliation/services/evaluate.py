"""How the matcher decides one claim: pure given a Context (``claim_evaluate``).

Per batch of open claims (pending, or needing review because the code was unknown or looked
like a typo) it runs a handful of queries: the claims; the receipts for all their codes
(one ``code__in``); the verified claims holding those receipts; the unmatched receipts in a
bounded time window (for look-alike codes, compared in Python by ``lookalike_key``); the
active bundles and their price history. Decisions are pure (``claim_evaluate``); only a
verification writes per claim (an order and a journal entry, under row locks).

Outcomes (ClaimStatus / ClaimReason):
- verified: the code is an unmatched receipt, its amount is the price in force at payment
  time of exactly one active bundle, any pasted SMS amount equals it and names our till as the
  payee, the recipient is known;
- needs_review other_merchant: the pasted SMS names a payee that is not our till (TILL_NAME,
  TILL_OTHER_NAMES; parsers.merchant.payee_is_us): a genuine SMS cannot pair our receipt with
  another payee. Decided before every other outcome, with or without a receipt, and final for
  the matcher (the SMS will not change);
- needs_review amount_mismatch: the amount matches no bundle, or the pasted SMS amount differs;
- needs_review code_already_used: the receipt already verified another claim (first stands);
- needs_review unknown_code: no receipt after CLAIM_GRACE seconds, or the code's embedded date
  is impossible for the message time (more than 2 days away, or after the message);
- needs_review possible_typo: no exact receipt, exactly one unmatched receipt differing only by
  look-alike slips (O/0 I/1 S/5 B/8 Z/2); suggested, never accepted automatically;
- needs_review ambiguous: two bundles share the price, several look-alike receipts, sender or
  recipient unclear, or the message predates the payment;
- needs_review paid_by_stk: the code is an STK payment's (settlement.stk_payments), with or
  without its till receipt: already paid, answered with the STK order;
- needs_review verify_failed: the verification itself failed (a domain or database error, in
  a savepoint): that claim waits for a person and the run goes on;
- pending: no receipt yet, within the grace period.
Verified and rejected claims are never touched here. Each run first settles the receipts booked
as unallocated before their STK payment was confirmed (settlement.stk_settlements_sweep).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from catalog.models import Bundle
from catalog.prices import PriceBook
from console.kernel.clock import nairobi_day
from console.kernel.money import money
from console.kernel.phones import phone_display
from reconciliation.models import Claim, ClaimReason, ClaimStatus, TillReceipt
from reconciliation.parsers import embedded_date, lookalike_key, payee_is_us

from .settlement import StkPayment

CODE_DATE_TOLERANCE_DAYS = 2
# Look-alike receipts are searched this far before a claim (and a little after, for clock skew).
LOOKALIKE_DAYS_BEFORE = 3
LOOKALIKE_HOURS_AFTER = 1
# A claim written this long before the payment it quotes cannot be right.
CLAIM_BEFORE_PAYMENT_MINUTES = 10

PASS, FAIL, NA = "pass", "fail", "na"
# What an agent reads for each check the matcher makes (the names stay in the stored explanation).
SIGNAL_LABELS = {
    "code_date_plausible": "Code date matches the message",
    "recipient": "Number to load is clear",
    "merchant": "Paid to our till",
    "stk_payment": "Not already paid by an M-Pesa prompt",
    "code_exact": "Till receipt with this code",
    "minutes_between_payment_and_claim": "Minutes between payment and claim",
    "amount_matches_bundle": "Amount is a bundle price",
    "sms_amount": "Amount in the pasted SMS",
}
RESULT_LABELS = {PASS: "OK", FAIL: "Problem", NA: "Not checked"}


def signal_label(name: str) -> str:
    """The plain words for a check; an unknown (older) name reads as words, never as code."""
    return SIGNAL_LABELS.get(name) or name.replace("_", " ").capitalize()


PAID_BY_STK = (
    "Already paid by STK: {code} paid order {order}. Nothing more to load for this code; "
    "reply with the order."
)
ALREADY_PAYS_ORDER = "Receipt {code} already pays order {order}; a receipt pays one order only."
OTHER_MERCHANT = "The pasted SMS says {amount} was paid to {payee}, not to {us}: an altered or other payment."


@dataclass
class Context:
    now: dt.datetime
    grace: dt.timedelta
    receipts: dict[str, TillReceipt]
    used_by: dict[int, int]  # receipt id -> verified claim id
    lookalikes: dict[str, list[TillReceipt]]
    prices: PriceBook
    stk_paid: dict[str, StkPayment] = field(default_factory=dict)  # code -> the STK payment it is
    order_of: dict[str, str] = field(default_factory=dict)  # code -> reference of the order holding it


@dataclass
class Decision:
    status: str
    reason: str = ""
    receipt: TillReceipt | None = None
    suggested: TillReceipt | None = None
    bundle: Bundle | None = None
    signals: list[dict] = field(default_factory=list)
    summary: str = ""
    paid_by: dict | None = None  # the order that already holds this code (shown with a link)

    def explanation(self, claim: Claim) -> dict:
        parse = (claim.explanation or {}).get("parse", {})
        out = {"parse": parse, "signals": self.signals, "summary": self.summary}
        if self.paid_by:
            out["paid_by"] = self.paid_by
        return out


def _signal(name: str, result: str, detail: str) -> dict:
    return {"name": name, "result": result, "detail": detail}


def code_date_check(code: str, claimed_at: dt.datetime) -> bool | None:
    """False when the code's embedded date is more than 2 days from the message or after it."""
    embedded = embedded_date(code)
    if embedded is None:
        return None
    day = nairobi_day(claimed_at)
    if embedded > day:
        return False
    return (day - embedded).days <= CODE_DATE_TOLERANCE_DAYS


def claim_evaluate(claim: Claim, ctx: Context) -> Decision:
    signals = []
    parse_flags = ((claim.explanation or {}).get("parse") or {}).get("ambiguous") or []
    receipt = ctx.receipts.get(claim.code)
    date_ok = code_date_check(claim.code, claim.claimed_at)
    embedded = embedded_date(claim.code)
    signals.append(
        _signal(
            "code_date_plausible",
            NA if date_ok is None else (PASS if date_ok else FAIL),
            "The code carries no readable date."
            if date_ok is None
            else f"The code's date {embedded:%d %b %Y} is {'consistent' if date_ok else 'inconsistent'} "
            f"with the message time {timezone.localtime(claim.claimed_at):%d %b %Y %H:%M}.",
        )
    )
    recipient_ok = bool(claim.recipient_msisdn) and not parse_flags
    signals.append(
        _signal(
            "recipient",
            PASS if recipient_ok else FAIL,
            f"Load {phone_display(claim.recipient_msisdn)}."
            if recipient_ok
            else "Unclear: " + ("; ".join(parse_flags) or "no number"),
        )
    )

    merchant = _merchant_signal(claim)
    signals.append(merchant)

    paid = ctx.stk_paid.get(claim.code)
    if paid is not None:
        # One M-Pesa code is one payment: an STK payment's code never pays a till claim too.
        signals.append(
            _signal("stk_payment", FAIL, f"{claim.code} is the receipt of STK order {paid.reference}.")
        )
        paid_by = {"order": paid.reference, "order_id": paid.order_id, "channel": "stk"}
        if merchant["result"] == FAIL:
            return _other_merchant(claim, receipt, signals, paid_by=paid_by)
        return Decision(
            ClaimStatus.NEEDS_REVIEW,
            ClaimReason.PAID_BY_STK,
            suggested=receipt,
            signals=signals,
            summary=PAID_BY_STK.format(code=claim.code, order=paid.reference),
            paid_by=paid_by,
        )

    if receipt is None:
        signals.append(_signal("code_exact", FAIL, f"No till receipt {claim.code} yet."))
        for name in ("amount_matches_bundle", "minutes_between_payment_and_claim"):
            signals.append(_signal(name, NA, "No receipt to compare with."))
        signals.append(_sms_signal(claim, None))
        if merchant["result"] == FAIL:
            # Decided now, receipt or not: a later receipt cannot make the SMS name us.
            return _other_merchant(claim, None, signals)
        return _without_receipt(claim, ctx, signals, date_ok)

    signals.append(
        _signal("code_exact", PASS, f"Till receipt {receipt.code} of KES {money(receipt.amount)}.")
    )
    minutes = int((claim.claimed_at - receipt.paid_at).total_seconds() // 60)
    early = minutes < -CLAIM_BEFORE_PAYMENT_MINUTES
    signals.append(
        _signal(
            "minutes_between_payment_and_claim",
            FAIL if early else PASS,
            f"The message was sent {abs(minutes)} min {'before' if minutes < 0 else 'after'} the payment.",
        )
    )
    bundles = ctx.prices.matching(receipt.amount, receipt.paid_at)
    signals.append(
        _signal(
            "amount_matches_bundle",
            PASS if len(bundles) == 1 else FAIL,
            f"KES {money(receipt.amount)} is the price of "
            + (", ".join(b.name for b in bundles) if bundles else "no active bundle")
            + " at payment time.",
        )
    )
    sms = _sms_signal(claim, receipt)
    signals.append(sms)

    if merchant["result"] == FAIL:
        # Before every other outcome, verification included: a genuine SMS for our receipt names us.
        return _other_merchant(claim, receipt, signals)

    used_by = ctx.used_by.get(receipt.pk)
    if (used_by and used_by != claim.pk) or receipt.order_id:
        return Decision(
            ClaimStatus.NEEDS_REVIEW,
            ClaimReason.CODE_ALREADY_USED,
            receipt=None,
            suggested=receipt,
            signals=signals,
            summary=f"Receipt {receipt.code} already paid another claim; the first claim stands.",
        )
    holder = ctx.order_of.get(receipt.code)
    if holder:
        # An order holds the code though the receipt is unlinked (older data): never a second order.
        return Decision(
            ClaimStatus.NEEDS_REVIEW,
            ClaimReason.CODE_ALREADY_USED,
            suggested=receipt,
            signals=signals,
            summary=ALREADY_PAYS_ORDER.format(code=receipt.code, order=holder),
        )
    if not bundles or sms["result"] == FAIL:
        why = (
            sms["detail"]
            if sms["result"] == FAIL
            else f"KES {money(receipt.amount)} matches no bundle price."
        )
        return Decision(
            ClaimStatus.NEEDS_REVIEW,
            ClaimReason.AMOUNT_MISMATCH,
            suggested=receipt,
            signals=signals,
            summary=why,
        )
    if len(bundles) > 1:
        return Decision(
            ClaimStatus.NEEDS_REVIEW,
            ClaimReason.AMBIGUOUS,
            suggested=receipt,
            signals=signals,
            summary="Several bundles cost this amount: " + ", ".join(b.name for b in bundles) + ".",
        )
    if not recipient_ok or early:
        summary = (
            "The message predates the payment."
            if early
            else "Sender or recipient unclear: " + "; ".join(parse_flags)
        )
        return Decision(
            ClaimStatus.NEEDS_REVIEW,
            ClaimReason.AMBIGUOUS,
            suggested=receipt,
            signals=signals,
            summary=summary,
        )
    return Decision(
        ClaimStatus.VERIFIED,
        receipt=receipt,
        bundle=bundles[0],
        signals=signals,
        summary=f"Code {receipt.code} and KES {receipt.amount:,.0f} match {bundles[0].name} "
        f"for {claim.recipient_msisdn}.",
    )


def _sms_signal(claim: Claim, receipt: TillReceipt | None) -> dict:
    if claim.claimed_amount is None:
        return _signal("sms_amount", NA, "No M-Pesa SMS was pasted.")
    if receipt is None:
        return _signal("sms_amount", NA, f"The pasted SMS says KES {money(claim.claimed_amount)}.")
    if claim.claimed_amount == receipt.amount:
        return _signal(
            "sms_amount", PASS, f"The pasted SMS amount KES {money(claim.claimed_amount)} equals the receipt."
        )
    return _signal(
        "sms_amount",
        FAIL,
        f"The pasted SMS says KES {money(claim.claimed_amount)} "
        f"but the till received KES {money(receipt.amount)}.",
    )


def other_payee_problem(claim: Claim) -> str | None:
    """Why the claim's pasted SMS cannot be a payment to us (OTHER_MERCHANT), or None when no
    SMS was pasted or it names our till (``payee_is_us``). Shown as the summary and on the
    claim and verify pages."""
    if not claim.claimed_merchant or payee_is_us(claim.claimed_merchant):
        return None
    amount = f"KES {money(claim.claimed_amount)}" if claim.claimed_amount is not None else "the money"
    return OTHER_MERCHANT.format(
        amount=amount,
        payee=claim.claimed_merchant,
        us=getattr(settings, "TILL_NAME", "") or "our till",
    )


def _merchant_signal(claim: Claim) -> dict:
    if not claim.claimed_merchant:
        return _signal("merchant", NA, "No payee to compare: no M-Pesa SMS was pasted.")
    problem = other_payee_problem(claim)
    if problem:
        return _signal("merchant", FAIL, problem)
    return _signal("merchant", PASS, f"The pasted SMS says {claim.claimed_merchant} was paid: our till.")


def _other_merchant(
    claim: Claim, receipt: TillReceipt | None, signals: list[dict], paid_by: dict | None = None
) -> Decision:
    return Decision(
        ClaimStatus.NEEDS_REVIEW,
        ClaimReason.OTHER_MERCHANT,
        suggested=receipt,
        signals=signals,
        summary=other_payee_problem(claim) or "",
        paid_by=paid_by,
    )


def _without_receipt(claim: Claim, ctx: Context, signals: list[dict], date_ok: bool | None) -> Decision:
    if date_ok is False:
        return Decision(
            ClaimStatus.NEEDS_REVIEW,
            ClaimReason.UNKNOWN_CODE,
            signals=signals,
            summary=f"No receipt {claim.code}, and its date does not fit the message time.",
        )
    low = claim.claimed_at - dt.timedelta(days=LOOKALIKE_DAYS_BEFORE)
    high = claim.claimed_at + dt.timedelta(hours=LOOKALIKE_HOURS_AFTER)
    candidates = [
        r
        for r in ctx.lookalikes.get(lookalike_key(claim.code), [])
        if r.code != claim.code and low <= r.paid_at <= high and r.pk not in ctx.used_by
    ]
    if len(candidates) == 1:
        return Decision(
            ClaimStatus.NEEDS_REVIEW,
            ClaimReason.POSSIBLE_TYPO,
            suggested=candidates[0],
            signals=signals,
            summary=f"No receipt {claim.code}; {candidates[0].code} differs only by look-alike characters.",
        )
    if len(candidates) > 1:
        return Decision(
            ClaimStatus.NEEDS_REVIEW,
            ClaimReason.AMBIGUOUS,
            signals=signals,
            summary="Several receipts look like this code: " + ", ".join(r.code for r in candidates) + ".",
        )
    if ctx.now - claim.claimed_at > ctx.grace:
        return Decision(
            ClaimStatus.NEEDS_REVIEW,
            ClaimReason.UNKNOWN_CODE,
            signals=signals,
            summary=f"No till receipt {claim.code} after {int(ctx.grace.total_seconds() // 60)} minutes.",
        )
    return Decision(ClaimStatus.PENDING, signals=signals, summary=f"Waiting for till receipt {claim.code}.")
