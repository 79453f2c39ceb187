"""Money as people read it. Amounts are Decimal (KES, two places) everywhere; these only format."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


def money(value, empty: str = "—") -> str:
    """Staff figures: thousands separators and cents, ``1,500.00``; anything else shown as it is."""
    if value is None:
        return empty
    try:
        return f"{value:,.2f}"
    except (ValueError, TypeError):
        return str(value)


def ksh(amount) -> str:
    """Customer figures: ``Ksh 1,500`` (whole shillings; cents only when there are some)."""
    if amount in (None, ""):
        return ""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return str(amount)
    if value == value.to_integral_value():
        return f"Ksh {int(value):,}"
    return f"Ksh {value:,.2f}"


def plain(amount: Decimal) -> str:
    """Machine figures for files (CSV): ``1500.00``, no separators."""
    return f"{amount:.2f}"
