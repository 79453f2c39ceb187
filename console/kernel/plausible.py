"""Plausible ranges for every value that comes from outside: gateways, C2B, statements, SMS.

A value outside its range is refused with a readable reason (``Implausible.message``); callers
turn that into a 4xx, a rejected callback or a refused import row. Nothing here touches the
database, so gateway parsers, importers and views can all share it.

- money: a finite, positive amount with at most two decimals, below ``MAX_PAYMENT_AMOUNT``;
- time: timezone-aware, not after now + ``CLOCK_SKEW_SECONDS``, not older than the window given;
- M-Pesa codes: ten upper-case letters and digits, starting with a letter;
- text: no NUL or other control characters (PostgreSQL text cannot hold NUL), bounded length.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings

CENT = Decimal("0.01")
DEFAULT_MAX_PAYMENT_AMOUNT = Decimal("250000")  # M-Pesa's largest single transaction
DEFAULT_CLOCK_SKEW_SECONDS = 300
MPESA_CODE_RE = re.compile(r"^[A-Z][A-Z0-9]{9}$")
# Control characters, and lone surrogates (neither PostgreSQL text nor jsonb can hold them).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_PLAIN_NUMBER_RE = re.compile(r"^\s*[0-9]{1,15}(?:\.[0-9]{1,15})?\s*$")  # ASCII only: never "１００"


class Implausible(ValueError):
    """A value from outside is out of its plausible range; ``message`` says which and why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def max_payment_amount() -> Decimal:
    return Decimal(str(getattr(settings, "MAX_PAYMENT_AMOUNT", DEFAULT_MAX_PAYMENT_AMOUNT)))


def clock_skew() -> dt.timedelta:
    return dt.timedelta(seconds=int(getattr(settings, "CLOCK_SKEW_SECONDS", DEFAULT_CLOCK_SKEW_SECONDS)))


def plausible_amount(value: Any, *, what: str = "amount") -> Decimal:
    """A payment amount as Decimal: positive, at most two decimals, below MAX_PAYMENT_AMOUNT.

    Accepts a JSON number (int or float such as ``150`` or ``150.0``) or a plain numeric string
    (``"150"``, ``"150.00"``). Refuses None, booleans, lists, objects, NaN, Infinity, exponents,
    signs, zero, negatives, fractions of a cent and anything at or above the maximum.
    """
    if value is None or isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise Implausible(f"{what} is missing or not a number ({_show(value)})")
    if isinstance(value, int | Decimal):
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)
    else:
        text = value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        text = str(int(value))
    if not _PLAIN_NUMBER_RE.match(text):
        raise Implausible(f"{what} {_show(value)} is not a positive amount in shillings and cents")
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise Implausible(f"{what} {_show(value)} is not a number")
    if amount <= 0:
        raise Implausible(f"{what} must be more than zero (got {_show(value)})")
    if amount != amount.quantize(CENT):
        raise Implausible(f"{what} {_show(value)} has fractions of a cent")
    if amount >= max_payment_amount():
        raise Implausible(f"{what} {_show(value)} is not below the maximum of {max_payment_amount():,}")
    return amount.quantize(CENT)


def plausible_time(
    when: dt.datetime | None, *, what: str = "time", max_age: dt.timedelta, now: dt.datetime | None = None
) -> dt.datetime:
    """An aware datetime no later than now + clock skew and no older than ``max_age``."""
    if when is None:
        raise Implausible(f"{what} is missing or unreadable")
    if when.tzinfo is None:
        raise Implausible(f"{what} has no time zone")
    now = now or dt.datetime.now(dt.UTC)
    if when > now + clock_skew():
        raise Implausible(f"{what} {when.isoformat()} is in the future")
    if when < now - max_age:
        raise Implausible(f"{what} {when.isoformat()} is more than {_age(max_age)} ago")
    return when


def plausible_receipt(value: Any, *, what: str = "M-Pesa receipt") -> str:
    """An M-Pesa code: ten upper-case letters and digits starting with a letter (case-folded)."""
    if not isinstance(value, str):
        raise Implausible(f"{what} is missing or not text ({_show(value)})")
    code = value.strip().upper()
    if not MPESA_CODE_RE.match(code):
        raise Implausible(f"{what} {_show(value)} is not an M-Pesa code")
    return code


def clean_text(value: Any, max_length: int = 255) -> str:
    """Text safe to store and show: control characters (NUL included) removed, bounded length."""
    if value is None:
        return ""
    return _CONTROL_RE.sub("", str(value))[:max_length]


def clean_json(value: Any, *, max_string: int = 2000, depth: int = 0) -> Any:
    """A JSON value with every string cleaned (no NUL, bounded); deep structures are cut."""
    if depth > 20:
        return "…"
    if isinstance(value, str):
        return clean_text(value, max_string)
    if isinstance(value, dict):
        deeper = depth + 1
        return {
            clean_text(k, 100): clean_json(v, max_string=max_string, depth=deeper) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [clean_json(v, max_string=max_string, depth=depth + 1) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return clean_text(text[:40] + ("…" if len(text) > 40 else ""))


def _age(delta: dt.timedelta) -> str:
    days = delta.days
    return f"{days} days" if days >= 1 else f"{int(delta.total_seconds())} s"
