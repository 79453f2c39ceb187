"""A sender's correction supersedes their earlier failed claim.

Customers often send a wrong code, then "sorry, correct code is UKOEFRW2IN". When the
correction verifies, the earlier claim of the same sender that failed for want of a payment
(no such receipt, a look-alike, an unreadable report) leaves the queue as *superseded*, linked
to the claim that verified. It is kept, never deleted.

Money is never lost by this: a claim is superseded only when its own code is on no till receipt
(an unreadable report has no code at all), and only when the verified message reads as a
correction or its code is a near copy of the failed one. If a receipt with the superseded code
turns up later, the claim is reopened (``superseded_reopen``) and matched like any other.
"""

from __future__ import annotations

import datetime as dt
import re

from django.utils import timezone

from console.kernel.audit import AuditAction, audit_record
from reconciliation.models import Claim, ClaimReason, ClaimStatus, TillReceipt

from .claim_status import claim_status_set

# How long before the correction the failed claim may have been sent.
CORRECTION_WINDOW = dt.timedelta(hours=2)
# Claims a correction can replace: those waiting for a payment that is not on the till.
FAILED = (ClaimReason.UNKNOWN_CODE, ClaimReason.POSSIBLE_TYPO, ClaimReason.UNPARSEABLE)
_CORRECTION_RE = re.compile(
    r"\b(sorry|correct|corrected|correction|wrong|mistake|typo|actual|right code|real code|"
    r"right one|the right|instead|pole|samahani|sahihi|nimekosea|ndio hii|ndiyo hii|hii ndio|hii ndiyo|"
    r"ignore)\b",
    re.I,
)
SUPERSEDED_NOTE = "Superseded by claim #{pk} ({code}), which the same sender sent as the correct code."
REOPENED_NOTE = "Reopened: a till receipt {code} arrived after this claim was superseded."


def reads_as_correction(text: str) -> bool:
    """ "sorry, correct code is…", "pole, hii ndio…": the sender replaces a code sent before."""
    return bool(_CORRECTION_RE.search(text or ""))


def near_copy(a: str, b: str) -> bool:
    """Two codes of the same payment typed twice: at most three characters differ in place."""
    return bool(a) and len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) <= 3


def claims_superseded_by(claim: Claim) -> int:
    """Mark the sender's earlier failed claims that ``claim`` (just verified) corrects. Returns
    how many. Call inside the verification's transaction."""
    if claim.status != ClaimStatus.VERIFIED or not claim.sender_msisdn:
        return 0
    earlier = Claim.objects.select_for_update().filter(
        sender_msisdn=claim.sender_msisdn,
        claimed_at__gte=claim.claimed_at - CORRECTION_WINDOW,
        claimed_at__lte=claim.claimed_at,
    )
    earlier = earlier.filter(status__in=[ClaimStatus.PENDING, ClaimStatus.NEEDS_REVIEW]).exclude(pk=claim.pk)
    candidates = [
        c for c in earlier if (c.status == ClaimStatus.PENDING and not c.reason) or c.reason in FAILED
    ]
    if not candidates:
        return 0
    on_till = set(
        TillReceipt.objects.filter(code__in=[c.code for c in candidates if c.code]).values_list(
            "code", flat=True
        )
    )
    says_correction = reads_as_correction(claim.message.text)
    done = 0
    now = timezone.now()
    for old in candidates:
        if old.code in on_till:
            continue  # a real payment of its own: never hidden
        if not (says_correction or not old.code or near_copy(old.code, claim.code)):
            continue
        before = {"status": old.status, "reason": old.reason}
        claim_status_set(old, ClaimStatus.SUPERSEDED)
        old.superseded_by = claim
        old.held_by, old.held_until = None, None
        old.decided_at = now
        old.decision_note = SUPERSEDED_NOTE.format(pk=claim.pk, code=claim.code)
        old.explanation = {**(old.explanation or {}), "summary": old.decision_note}
        old.save(
            update_fields=[
                "status",
                "superseded_by",
                "held_by",
                "held_until",
                "decided_at",
                "decision_note",
                "explanation",
                "updated_at",
            ]
        )
        audit_record(
            actor=None,
            action=AuditAction.CLAIM_SUPERSEDED,
            obj=old,
            before=before,
            after={"status": old.status, "superseded_by": claim.pk},
        )
        done += 1
    return done


def claims_superseded_by_many(claims: list[Claim]) -> int:
    """claims_superseded_by for claims verified together: one query finds the senders who have an
    earlier open claim at all (most have none), and only their claims are looked at one by one."""
    verified = [c for c in claims if c.status == ClaimStatus.VERIFIED and c.sender_msisdn]
    if not verified:
        return 0
    senders = set(
        Claim.objects.filter(
            sender_msisdn__in={c.sender_msisdn for c in verified},
            claimed_at__gte=min(c.claimed_at for c in verified) - CORRECTION_WINDOW,
            claimed_at__lte=max(c.claimed_at for c in verified),
            status__in=[ClaimStatus.PENDING, ClaimStatus.NEEDS_REVIEW],
        ).values_list("sender_msisdn", flat=True)
    )
    return sum(claims_superseded_by(c) for c in verified if c.sender_msisdn in senders)


def superseded_reopen() -> int:
    """Superseded claims whose code is now an unmatched till receipt go back to matching: the
    customer had paid with that code after all. Returns how many."""
    unmatched = TillReceipt.objects.unmatched().values("code")
    reopened = 0
    for old in (
        Claim.objects.filter(status=ClaimStatus.SUPERSEDED).exclude(code="").filter(code__in=unmatched)
    ):
        before = {"status": old.status, "superseded_by": old.superseded_by_id}
        claim_status_set(old, ClaimStatus.PENDING)
        old.reason, old.superseded_by = "", None
        old.decided_at = None
        old.decision_note = REOPENED_NOTE.format(code=old.code)
        old.save(
            update_fields=["status", "reason", "superseded_by", "decided_at", "decision_note", "updated_at"]
        )
        audit_record(
            actor=None,
            action=AuditAction.CLAIM_REOPENED,
            obj=old,
            before=before,
            after={"status": old.status},
        )
        reopened += 1
    return reopened
