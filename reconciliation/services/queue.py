"""The claims work queue: an agent takes the next claim and holds it for a few minutes.

A hold is advisory for reading and binding for deciding: others skip a held claim in
take-next, and verify/reject by someone other than the holder is refused until they take it
over. A hold expires on its own (held_until in the past), so a closed laptop frees the claim.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.db.models import Case, IntegerField, Q, Value, When
from django.utils import timezone

from console.kernel.audit import AuditAction, audit_record
from reconciliation.models import Claim, ClaimStatus, claim_statuses_allowing

from .errors import CLAIM_HELD_BY_OTHER, NOT_HOLDER, QUEUE_EMPTY, ClaimHeldByOther, ClaimNotOpen, QueueEmpty

HOLD_MINUTES = 10
HOLD_FOR = dt.timedelta(minutes=HOLD_MINUTES)
OPEN_STATUSES = claim_statuses_allowing("verify")  # waiting for a decision


def hold_is_active(claim: Claim, now: dt.datetime | None = None) -> bool:
    return bool(claim.held_by_id and claim.held_until and claim.held_until > (now or timezone.now()))


def held_by_other(claim: Claim, user, now: dt.datetime | None = None) -> bool:
    return hold_is_active(claim, now) and claim.held_by_id != getattr(user, "pk", None)


def hold_message(claim: Claim) -> str:
    who = claim.held_by.get_username() if claim.held_by_id else "someone"
    return CLAIM_HELD_BY_OTHER.format(who=who, until=timezone.localtime(claim.held_until).strftime("%H:%M"))


def claim_check_hold(*, claim: Claim, user) -> None:
    """Raise ClaimHeldByOther when `claim` (locked by the caller) is held by someone else."""
    if user is not None and held_by_other(claim, user):
        raise ClaimHeldByOther(hold_message(claim))


def claim_clear_hold(claim: Claim) -> None:
    """Drop the hold on an in-memory claim; the caller saves it (a decision ends the hold)."""
    claim.held_by = None
    claim.held_until = None


def _hold(claim: Claim, user, now: dt.datetime, action: str) -> Claim:
    before = {
        "held_by": claim.held_by.get_username() if claim.held_by_id else None,
        "held_until": claim.held_until,
    }
    claim.held_by = user
    claim.held_until = now + HOLD_FOR
    claim.save(update_fields=["held_by", "held_until", "updated_at"])
    audit_record(
        actor=user,
        action=action,
        obj=claim,
        before=before,
        after={"held_by": user.get_username(), "held_until": claim.held_until},
    )
    return claim


@transaction.atomic
def claim_take_next(*, user, now: dt.datetime | None = None) -> Claim:
    """Hold the oldest open claim nobody else holds (needs review first, then pending) for
    HOLD_FOR, and return it. Atomic; two agents at once get two different claims (rows are
    locked with SKIP LOCKED where the database has it; SQLite serialises writers anyway).
    A claim the user already holds counts as free, so pressing twice keeps the same claim.
    Raises QueueEmpty."""
    now = now or timezone.now()
    free = Q(held_until__isnull=True) | Q(held_until__lte=now) | Q(held_by=user)
    candidates = (
        Claim.objects.filter(free, status__in=OPEN_STATUSES)
        .annotate(
            queue_rank=Case(
                When(status=ClaimStatus.NEEDS_REVIEW, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("queue_rank", "claimed_at", "id")
    )
    if connection.features.has_select_for_update_skip_locked:
        # Lock only the claim row (of=self), skipping rows another agent is taking right now.
        candidates = candidates.select_for_update(skip_locked=True, of=("self",))
    else:
        candidates = candidates.select_for_update()
    claim = candidates.first()
    if claim is None:
        raise QueueEmpty(QUEUE_EMPTY)
    return _hold(claim, user, now, "claim.taken")


@transaction.atomic
def claim_take_over(*, claim_id: int, user, now: dt.datetime | None = None) -> Claim:
    """Hold a specific open claim, whoever held it before (audited with the previous holder)."""
    now = now or timezone.now()
    claim = Claim.objects.select_for_update().get(pk=claim_id)
    if claim.status not in OPEN_STATUSES:
        raise ClaimNotOpen(
            f"Claim {claim.code} is {claim.get_status_display().lower()}; nothing to take over."
        )
    return _hold(claim, user, now, "claim.taken_over")


@transaction.atomic
def claim_release(*, claim_id: int, user) -> Claim:
    """The holder lets go of a claim so the next agent can take it. Raises ClaimHeldByOther
    when someone else holds it; releasing a claim nobody holds changes nothing."""
    claim = Claim.objects.select_for_update().get(pk=claim_id)
    if not hold_is_active(claim):
        return claim
    if claim.held_by_id != user.pk:
        raise ClaimHeldByOther(NOT_HOLDER.format(code=claim.code) + " " + hold_message(claim))
    before = {"held_by": user.get_username(), "held_until": claim.held_until}
    claim_clear_hold(claim)
    claim.save(update_fields=["held_by", "held_until", "updated_at"])
    audit_record(
        actor=user, action=AuditAction.CLAIM_RELEASED, obj=claim, before=before, after={"held_by": None}
    )
    return claim
