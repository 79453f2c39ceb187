"""The one setter of a claim's status: every change checks reconciliation.models.CLAIM_TRANSITIONS.

The caller saves the claim (alone, or in a bulk update) inside its transaction with its audit row.
"""

from __future__ import annotations

from reconciliation.models import Claim, ClaimStatus

from .errors import TRANSITION_REFUSED, ClaimTransitionRefused


def claim_status_set(claim: Claim, status: str) -> None:
    """Move ``claim`` to ``status`` (not saved). Raises ClaimTransitionRefused when the table does
    not allow the move from the claim's current status."""
    if not claim.can_become(status):
        raise ClaimTransitionRefused(
            TRANSITION_REFUSED.format(
                status=claim.get_status_display().lower(), to=ClaimStatus(status).label.lower()
            )
        )
    claim.status = status
