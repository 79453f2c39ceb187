"""Reading the values of callbacks and status answers.

Callbacks are parsed strictly (anything unexpected is :class:`CallbackParseError`; a success must
carry a plausible amount, an M-Pesa receipt and, when it gives one, a recent transaction time);
status answers are read leniently (an unusable value becomes None). The plausible ranges
(``MAX_PAYMENT_AMOUNT``, ``CLOCK_SKEW_SECONDS``, ``GATEWAY_TIME_WINDOW_DAYS``) are read when a
callback is parsed, through :mod:`console.kernel.plausible`.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from console.kernel.clock import NAIROBI
from console.kernel.clock import now as nairobi_now
from console.kernel.phones import try_normalise_msisdn
from console.kernel.plausible import Implausible, plausible_amount, plausible_receipt, plausible_time

from .base import MAX_IDENTIFIER, CallbackParseError
from .clean import safe_text, strict_json_loads

DEFAULT_TIME_WINDOW_DAYS = 3

_IDENTIFIER_BAD_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_INT_CODE_RE = re.compile(r"^-?[0-9]{1,10}$")  # ASCII digits only: never "٠"
# Result codes that are not numbers, like the documented SFC_IC0003: upper case with an underscore.
_TEXT_CODE_RE = re.compile(r"^[A-Z][A-Z0-9]*_[A-Z0-9_]{1,30}$")
_EAT_STAMP_RE = re.compile(r"^[0-9]{14}$")


def load_json_object(body: bytes | str, what: str) -> dict:
    """Decode a callback body into a dict or raise CallbackParseError."""
    if isinstance(body, bytes | bytearray):
        try:
            text = bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CallbackParseError(f"{what} callback is not UTF-8 text ({exc.reason})")
    elif isinstance(body, str):
        text = body
    else:
        raise CallbackParseError(f"{what} callback body must be bytes, got {type(body).__name__}")
    if not text.strip():
        raise CallbackParseError(f"{what} callback body is empty")
    try:
        data = strict_json_loads(text)
    except ValueError as exc:
        raise CallbackParseError(f"{what} callback is not valid JSON: {safe_text(exc, 200)}")
    if not isinstance(data, dict):
        raise CallbackParseError(f"{what} callback must be a JSON object, got a JSON {type(data).__name__}")
    return data


def parse_identifier(value: Any, what: str, *, required: bool = False) -> str | None:
    """A gateway id or reference from a callback (CheckoutRequestID, MerchantRequestID, …).

    Strings are stripped; an integer is taken as its digits. None and "" are absent (an error when
    ``required``). Anything else (lists, objects, booleans, floats), anything longer than 64
    characters and anything with a control character (NUL included) is a CallbackParseError.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise CallbackParseError(f"{what} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise CallbackParseError(f"{what} must be text, got a JSON {_json_type(value)}")
    text = str(value).strip()
    if _IDENTIFIER_BAD_RE.search(text):
        raise CallbackParseError(f"{what} contains control characters")
    if len(text) > MAX_IDENTIFIER:
        raise CallbackParseError(f"{what} is longer than {MAX_IDENTIFIER} characters")
    return text


def identifier_or_none(value: Any) -> str | None:
    """:func:`parse_identifier` for status query answers: anything unusable is simply absent."""
    try:
        return parse_identifier(value, "identifier")
    except CallbackParseError:
        return None


def parse_result_code(value: Any, what: str) -> str:
    """A callback's ResultCode: an integer, an integral JSON number or a string of digits
    (``0``, ``"1032"``, ``1032.0``), or a documented text code such as ``SFC_IC0003``.

    Booleans, fractions, NaN/Infinity, lists, objects, empty and other text are CallbackParseError:
    a forged or garbled code must never be read as success or as failure.
    """
    if value is None or isinstance(value, bool):
        raise CallbackParseError(f"{what} is missing or not a result code ({_show(value)})")
    if isinstance(value, int):
        if abs(value) >= 10**10:
            raise CallbackParseError(f"{what} {_show(value)} is not a result code")
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer() or abs(value) >= 1e10:
            raise CallbackParseError(f"{what} {_show(value)} is not a whole number")
        return str(int(value))
    if isinstance(value, str):
        text = value.strip()
        if _INT_CODE_RE.match(text):
            return str(int(text))
        if _TEXT_CODE_RE.match(text):
            return text
        if not text:
            raise CallbackParseError(f"{what} is empty")
        raise CallbackParseError(f"{what} {_show(value)} is not a result code")
    raise CallbackParseError(f"{what} must be a number, got a JSON {_json_type(value)}")


def result_code_or_none(value: Any) -> str | None:
    """:func:`parse_result_code` for status answers: None when absent or unreadable."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return parse_result_code(value, "ResultCode")
    except CallbackParseError:
        return None


def time_window() -> timedelta:
    """How old a callback's transaction time may be (settings.GATEWAY_TIME_WINDOW_DAYS, 3 days)."""
    from django.conf import settings

    return timedelta(days=int(getattr(settings, "GATEWAY_TIME_WINDOW_DAYS", DEFAULT_TIME_WINDOW_DAYS)))


def success_amount(value: Any, what: str) -> Decimal:
    """The amount of a success callback, or CallbackParseError (see ``plausible_amount``)."""
    try:
        return plausible_amount(value, what=what)
    except Implausible as exc:
        raise CallbackParseError(f"success callback refused: {exc.message}")


def success_receipt(value: Any, what: str) -> str:
    """The M-Pesa receipt of a success callback, upper-cased, or CallbackParseError."""
    try:
        return plausible_receipt(value, what=what)
    except Implausible as exc:
        raise CallbackParseError(f"success callback refused: {exc.message}")


def success_time(when: datetime | None, what: str, now: datetime | None = None) -> datetime:
    """A success callback's transaction time: readable, recent, not in the future."""
    try:
        return plausible_time(when, what=what, max_age=time_window(), now=now)
    except Implausible as exc:
        raise CallbackParseError(f"success callback refused: {exc.message}")
    except (OverflowError, ValueError):
        raise CallbackParseError(f"success callback refused: {what} is out of range")


def success_phone(value: Any, what: str) -> str | None:
    """A success callback's phone: absent or masked (``2547****149``) is None; present must be a
    number of at most 15 digits (see ``try_normalise_msisdn(as_reported=True)``)."""
    if value is None or value == "" or (isinstance(value, str) and "*" in value):
        return None
    phone = try_normalise_msisdn(value, as_reported=True)
    if phone is None:
        raise CallbackParseError(f"success callback refused: {what} {_show(value)} is not a phone number")
    return phone


def amount_or_none(value: Any) -> Decimal | None:
    """An amount from a status answer or a failure: plausible or None."""
    try:
        return plausible_amount(value)
    except Implausible:
        return None


def receipt_or_none(value: Any) -> str | None:
    """An M-Pesa receipt from a status answer or a failure: M-Pesa-shaped or None."""
    try:
        return plausible_receipt(value)
    except Implausible:
        return None


def to_decimal(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool | dict | list):
        return None
    try:
        # str() first so a float like 1.0 becomes Decimal("1.0"), not a binary expansion
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def parse_eat_timestamp(value: Any) -> datetime | None:
    """Daraja ``TransactionDate`` (``20191219102115``, int or str, EAT) -> aware datetime or None.

    Exactly 14 digits; an integral float is accepted; anything else (fractions, bools, text, a
    date that does not exist) gives None.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None
        value = int(value)
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        return None
    if not _EAT_STAMP_RE.match(text):
        return None
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=NAIROBI)
    except ValueError:
        return None


def parse_iso_datetime(value: Any) -> datetime | None:
    """ISO 8601 (``2024-11-26T08:41:14.160604Z``) -> aware datetime; naive values are taken as UTC."""
    if not value or not isinstance(value, str) or len(value) > 64:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed.astimezone(UTC)  # year 1 / 9999 with an offset cannot be converted
    except (ValueError, OverflowError):
        return None
    return parsed


def daraja_timestamp(now: datetime | None = None) -> str:
    """``YYYYMMDDHHmmss`` in Nairobi time."""
    return (now or nairobi_now()).astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")


def error_message_from(data: Any, fallback: str) -> str:
    """Pick the human message out of an error body of any of the shapes gateways use."""
    if isinstance(data, dict):
        for key in (
            "errorMessage",
            "error_message",
            "ResponseDescription",
            "resultDesc",
            "ResultDesc",
            "message",
            "error_description",
            "detail",
            "error",
        ):
            value = data.get(key)
            if isinstance(value, str) and value.strip():
                return safe_text(value, 300)
            if isinstance(value, dict):
                nested = error_message_from(value, "")
                if nested:
                    return nested
    return fallback


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _show(value: Any) -> str:
    text = repr(value)
    return safe_text(text[:40] + ("…" if len(text) > 40 else ""), 60)
