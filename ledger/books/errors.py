"""What the books refuse: the errors of posting, closing and correcting entries."""

from __future__ import annotations

from console.kernel.exceptions import DomainError

REASON_REQUIRED = "Give a reason: the books keep it next to the entry."


class UnbalancedEntry(DomainError):
    """The postings of an entry must sum to zero."""


class InvalidEntry(DomainError):
    """This entry cannot be posted."""


class DayNotClosed(DomainError):
    """That day's books are not closed."""


class ReasonRequired(DomainError):
    """Give a reason: the books keep it next to the entry."""


class OrderNotRefundable(DomainError):
    """Only paid or delivered orders can be refunded."""


class OrderAlreadyRefunded(DomainError):
    """This order has already been refunded."""


class EntryNotReversible(DomainError):
    """This entry cannot be reversed."""


def require_reason(reason: str) -> str:
    """The reason, stripped; raises ReasonRequired when there is none."""
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired(REASON_REQUIRED)
    return reason
