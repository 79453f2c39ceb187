"""Who may see which part of the console pages that span several models.

"Find anything" and the customer timeline gather rows from several admins on one page. Each
section of them is shown only to a user who may view that model in its own admin, so these
pages never reveal more than the admin would: a catalogue manager finds nothing here, a support
agent sees no callbacks. The callback inbox is for superusers only (raw gateway bodies carry
customers' numbers and names), whatever permissions a group holds.
"""

from __future__ import annotations

SUPERUSER = "superuser"

# section -> the permission that opens it (SUPERUSER: superusers only)
FIND_SECTIONS: dict[str, str] = {
    "orders": "ledger.view_order",
    "claims": "reconciliation.view_claim",
    "receipts": "reconciliation.view_tillreceipt",
    "callbacks": SUPERUSER,
}

TIMELINE_SECTIONS: dict[str, str] = {
    "order": "ledger.view_order",
    "claim": "reconciliation.view_claim",
    "receipt": "reconciliation.view_tillreceipt",
    "message": "reconciliation.view_whatsappmessage",
}


def allowed(user, perm: str) -> bool:
    if not (user.is_active and user.is_staff):
        return False
    if perm == SUPERUSER:
        return user.is_superuser
    return user.has_perm(perm)


def visible_sections(user, sections: dict[str, str]) -> frozenset[str]:
    """The sections of `sections` that `user` may see."""
    return frozenset(name for name, perm in sections.items() if allowed(user, perm))


def can_find(user) -> bool:
    """Whether "Find anything" and the customer timeline have anything to show this user."""
    return bool(visible_sections(user, FIND_SECTIONS) or visible_sections(user, TIMELINE_SECTIONS))
