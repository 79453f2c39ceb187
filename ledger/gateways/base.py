"""Shared types, errors and helpers for the payment gateway clients.

Nothing in this package touches the ORM or imports Django models. Gateway configuration is read
from Django settings only in :func:`ledger.gateways.get_gateway`; the plausible ranges
(``MAX_PAYMENT_AMOUNT``, ``CLOCK_SKEW_SECONDS``, ``GATEWAY_TIME_WINDOW_DAYS``) are read when a
callback is parsed, through :mod:`console.kernel.plausible`. The gateways talk to M-Pesa (directly through
Daraja or via PayHero) and translate every answer into the small dataclasses below, so the rest of
Tillbook never sees a gateway's raw shape except in the ``raw`` fields kept for audit.

Result codes are the stable contract; ``ResultDesc`` text varies (case, trailing period,
``[STK_CB - ]`` prefixes), so nothing here branches on it.

Two kinds of input, two kinds of strictness:

- **Callbacks** come from anyone who knows the URL. Their parsers are strict: anything that is not
  one of the documented shapes raises :class:`CallbackParseError` (the edge answers 400 and stores
  the body as rejected). A success must carry a plausible amount, an M-Pesa receipt and, when it
  gives one, a recent transaction time.
- **Status query answers** come from the gateway over TLS and are what a success is confirmed
  against, so they are read for what they say and cleaned, never refused for an odd detail: an
  unreadable amount or receipt becomes None; an answer that cannot be read at all (no JSON, an
  unreadable ResultCode) is :class:`GatewayUnavailable` (ask again later).

Every string kept from outside (``result_desc``, ``raw``, error messages) has its NUL and other
control characters removed, so nothing a gateway sends can break a PostgreSQL ``text``/``jsonb``.
"""

from __future__ import annotations

import json
import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError
from urllib3.util.retry import Retry

from console.kernel.plausible import (
    Implausible,
    clean_json,
    clean_text,
    plausible_amount,
    plausible_receipt,
    plausible_time,
)

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        EAT = ZoneInfo("Africa/Nairobi")
    except ZoneInfoNotFoundError:  # no tzdata: Kenya has had a fixed UTC+3 offset since 1960
        EAT = timezone(timedelta(hours=3), "EAT")
except ImportError:  # pragma: no cover
    EAT = timezone(timedelta(hours=3), "EAT")

Status = Literal["success", "failed", "pending"]

SUCCESS_CODE = "0"
# The STK query's "still under processing" result code seen by a third-party simulator (UNVERIFIED).
STILL_PROCESSING_CODE = "4999"
# The Daraja error code of the STK query's "The transaction is being processed" HTTP error. The
# Daraja client records it as the result code of a pending StkResult.
DARAJA_PROCESSING_ERROR = "500.001.1001"
PENDING_CODES = frozenset({STILL_PROCESSING_CODE, DARAJA_PROCESSING_ERROR})

MAX_ACCOUNT_REFERENCE = 12
MAX_DESCRIPTION = 13
MIN_AMOUNT = 1
MAX_AMOUNT = 249_999  # below MAX_PAYMENT_AMOUNT (250,000): its success callback must be acceptable

_MSISDN_RE = re.compile(r"^254[17][0-9]{8}$")

# Bounds on what is kept from outside.
MAX_IDENTIFIER = 64  # CheckoutRequestID, MerchantRequestID, references
MAX_MSISDN_DIGITS = 15  # E.164
MAX_DESC = 255  # ResultDesc and other free text
MAX_ERROR_MESSAGE = 1000
DEFAULT_TIME_WINDOW_DAYS = 3

# Seconds one customer request may spend on gateway calls (see GATEWAY_REQUEST_BUDGET).
DEFAULT_REQUEST_BUDGET = 25.0
# Below this many seconds left, no new HTTP call is started: it could not finish anyway.
MIN_CALL_SECONDS = 0.5

_IDENTIFIER_BAD_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
_INT_CODE_RE = re.compile(r"^-?[0-9]{1,10}$")  # ASCII digits only: never "٠"
# Result codes that are not numbers, like the documented SFC_IC0003: upper case with an underscore.
_TEXT_CODE_RE = re.compile(r"^[A-Z][A-Z0-9]*_[A-Z0-9_]{1,30}$")
_EAT_STAMP_RE = re.compile(r"^[0-9]{14}$")

# ResultDesc wording from Safaricom's official table (MpesaExpressSimulate "Result codes"), plus the
# codes seen in public code (1001, 1031, 1036, 9999, 26). Used by the simulator's callbacks.
OFFICIAL_RESULT_DESCS: dict[str, str] = {
    "0": "The service request is processed successfully.",
    "1": "The balance is insufficient for the transaction.",
    "2": "Declined due to limit rule.",
    "3": "Declined due to limit rule: greater than the maximum transaction amount.",
    "4": "Declined due to limit rule: would exceed daily transfer limit.",
    "8": "Declined due to limit rule: would exceed the maximum balance.",
    "17": "Rule limited.",
    "26": "System busy. The service request is rejected.",
    "1001": "Unable to lock subscriber, a transaction is already in process for the current subscriber.",
    "1019": "Transaction has expired.",
    "1025": "An error occurred while sending a push request.",
    "1031": "Request cancelled by user.",
    "1032": "Request cancelled by user.",
    "1036": "SMSC ACK timeout.",
    "1037": "DS timeout user cannot be reached.",
    "2001": "The initiator information is invalid.",
    "2028": "The request is not permitted according to product assignment.",
    "8006": "The security credential is locked.",
    "9999": "Internal error occurred while executing the transaction.",
    "SFC_IC0003": "The operator does not exist.",
}

# Plain words for customers and shop agents, keyed by normalised result code.
_PLAIN_RESULTS: dict[str, str] = {
    "0": "Payment received",
    "1": "Insufficient M-Pesa balance",
    "2": "Amount is below the M-Pesa minimum",
    "3": "Amount is above the M-Pesa maximum per transaction",
    "4": "Payment would exceed the daily M-Pesa limit",
    "8": "The till cannot receive more money right now; contact the shop",
    "17": "Same amount paid within 2 minutes; try again later",
    "26": "M-Pesa is busy; try again in a few minutes",
    "1001": "Another M-Pesa transaction is in progress on this phone; try again in a minute",
    "1019": "The request expired",
    "1025": "M-Pesa could not send the payment prompt; try again",
    "1031": "You cancelled the request",
    "1032": "You cancelled the request",
    "1036": "Phone unreachable",
    "1037": "Phone unreachable",
    "2001": "Wrong M-Pesa PIN",
    "2028": "The shop's M-Pesa till is set up wrongly; contact the shop",
    "SFC_IC0003": "The shop's M-Pesa till is set up wrongly; contact the shop",
    "8006": "The shop's M-Pesa credentials are locked; contact the shop",
    "9999": "M-Pesa had an internal error; try again",
    "4999": "Payment is still being processed",
    "500.001.1001": "Payment is still being processed",
}

_BRACKET_PREFIX_RE = re.compile(r"^\s*(?:\[[^\]]*\]\s*)+")


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StkPushRequest:
    """What Tillbook asks a gateway to charge.

    ``amount`` is whole KES (1..250,000); ``phone`` is ``2547…``/``2541…`` without ``+``.
    ``account_reference`` is cut to 12 characters and ``description`` to 13 (Daraja limits; the
    account reference is shown to the customer in the prompt).
    """

    order_reference: str
    amount: int
    phone: str
    account_reference: str
    description: str
    callback_url: str
    customer_name: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise ValueError(f"amount must be a whole number of KES, got {self.amount!r}")
        if not MIN_AMOUNT <= self.amount <= MAX_AMOUNT:
            raise ValueError(f"amount must be between {MIN_AMOUNT} and {MAX_AMOUNT} KES, got {self.amount}")
        if not _MSISDN_RE.match(str(self.phone)):
            raise ValueError(f"phone must look like 2547XXXXXXXX (12 digits, no +), got {self.phone!r}")
        if not self.order_reference:
            raise ValueError("order_reference is required")
        object.__setattr__(self, "account_reference", (self.account_reference or "")[:MAX_ACCOUNT_REFERENCE])
        object.__setattr__(self, "description", (self.description or "")[:MAX_DESCRIPTION])


@dataclass(frozen=True)
class StkAccepted:
    """The gateway queued the prompt. Not a payment: wait for the callback or query status."""

    checkout_request_id: str
    merchant_request_id: str
    gateway_reference: str
    raw_request: dict = field(repr=False)
    raw_response: dict = field(repr=False)


@dataclass(frozen=True)
class StkResult:
    """Outcome of an STK push, from a callback or a status query.

    ``result_code`` is always a string ("0", "1032", "4999") or None when the gateway gave none.
    ``paid_at`` is timezone-aware. ``gateway_reference`` is the gateway's own reference when known
    (PayHero's ``reference``; Daraja's CheckoutRequestID).
    """

    status: Status
    checkout_request_id: str | None
    external_reference: str | None
    merchant_request_id: str | None
    result_code: str | None
    result_desc: str
    receipt: str | None
    amount: Decimal | None
    phone: str | None
    paid_at: datetime | None
    raw: dict = field(repr=False)
    gateway_reference: str | None = None

    @property
    def plain_message(self) -> str:
        return describe_result(self.result_code, self.result_desc)


@dataclass(frozen=True)
class StatusQuery:
    checkout_request_id: str | None
    gateway_reference: str | None
    order_reference: str
    # What was asked for; real gateways look it up themselves, the simulator answers from it.
    phone: str | None = None
    amount: Decimal | None = None
    # When the prompt was sent (aware): the simulator's customer answers a few seconds later.
    sent_at: datetime | None = None


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------
class GatewayError(Exception):
    """A gateway call did not give a usable answer. ``message`` is readable by a shop agent.

    ``message``, ``code`` and ``raw`` often quote the gateway; they are cleaned here (no NUL or
    control characters, bounded) because callers store them.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        raw: Any = None,
    ) -> None:
        message = safe_text(message, MAX_ERROR_MESSAGE)
        super().__init__(message)
        self.message = message
        self.code = safe_text(code, MAX_IDENTIFIER) or None if code is not None else None
        self.http_status = http_status
        self.raw = clean_raw(raw)

    def __str__(self) -> str:
        return self.message


class GatewayUnavailable(GatewayError):
    """Timeout, connection error, 5xx or rate limit: nothing final happened, try again later.

    ``ambiguous`` is True when a charging request may have reached the gateway (a read timeout
    or a 5xx after sending an STK push): do not push again, query the status first.
    """

    def __init__(self, message: str, *, ambiguous: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.ambiguous = ambiguous


class GatewayRejected(GatewayError):
    """The gateway refused the request (4xx or ``success: false``); retrying as-is will not help."""


class CallbackParseError(ValueError):
    """A callback body is not one of the accepted shapes. The message names what is wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# ------------------------------------------------------------------------------------------------
# Gateway interface
# ------------------------------------------------------------------------------------------------
class Gateway(ABC):
    name: str = ""

    @abstractmethod
    def initiate_stk(self, req: StkPushRequest) -> StkAccepted:
        """Send the STK prompt. Never retried automatically: a retry could charge twice."""

    @abstractmethod
    def query_status(self, q: StatusQuery) -> StkResult:
        """Ask the gateway what happened. Safe to call repeatedly."""

    @classmethod
    @abstractmethod
    def parse_callback(cls, body: bytes) -> StkResult:
        """Parse a callback body (no credentials needed). Raises CallbackParseError on anything
        unexpected."""

    def after_send(self, stk_id: int) -> None:
        """Called inside the transaction that stores an accepted prompt (a gateway that plays the
        customer queues its callback here, on commit). Real gateways do nothing."""
        return None


# ------------------------------------------------------------------------------------------------
# Result codes
# ------------------------------------------------------------------------------------------------
def normalise_result_code(code: Any) -> str | None:
    """``0``, ``"0"``, ``0.0`` -> ``"0"``; ``" 1032 "`` -> ``"1032"``; None/"" -> None."""
    if code is None or isinstance(code, bool):
        return None
    if isinstance(code, float) and code.is_integer():
        code = int(code)
    text = str(code).strip()
    if not text:
        return None
    if re.fullmatch(r"-?[0-9]+", text):
        return str(int(text))
    return text


def status_for_result_code(code: Any) -> Status:
    """0 -> success; 4999 and Daraja's "being processed" (500.001.1001) -> pending; else failed."""
    norm = normalise_result_code(code)
    if norm == SUCCESS_CODE:
        return "success"
    if norm in PENDING_CODES:
        return "pending"
    return "failed"


def strip_desc_prefix(desc: str | None) -> str:
    """``"[STK_CB - ]Request cancelled by user"`` -> ``"Request cancelled by user"``."""
    return _BRACKET_PREFIX_RE.sub("", desc or "").strip()


def describe_result(code: Any, desc: str | None = None) -> str:
    """Plain words for a result code; unknown codes fall back to the gateway's own text."""
    norm = normalise_result_code(code)
    if norm is not None and norm in _PLAIN_RESULTS:
        return _PLAIN_RESULTS[norm]
    cleaned = strip_desc_prefix(desc)
    if cleaned:
        return cleaned
    if norm is not None:
        return f"M-Pesa result code {norm}"
    return "No result from M-Pesa yet"


# ------------------------------------------------------------------------------------------------
# Parsing helpers
# ------------------------------------------------------------------------------------------------
def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses to inf without passing through parse_constant
        raise ValueError(f"{text[:20]} is too large a number")
    return value


def strict_json_loads(text: str) -> Any:
    """``json.loads`` without Python's extensions: NaN, Infinity and overflowing floats are refused
    (ValueError); nesting too deep for the parser raises ValueError instead of RecursionError."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("JSON is nested too deeply") from None


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


def _without_surrogates(value: Any, depth: int = 0) -> Any:
    """Lone surrogates (from ``\\ud800`` escapes) cannot be stored in PostgreSQL; drop them."""
    if depth > 25:  # clean_json cuts deeper structures anyway
        return value
    if isinstance(value, str):
        return _SURROGATE_RE.sub("", value)
    if isinstance(value, dict):
        return {
            _without_surrogates(k, depth + 1): _without_surrogates(v, depth + 1) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_without_surrogates(v, depth + 1) for v in value]
    return value


def clean_raw(value: Any) -> Any:
    """A gateway's raw answer, safe to keep in a JSONField (see `console.kernel.plausible.clean_json`)."""
    if value is None:
        return None
    return clean_json(_without_surrogates(value))


def safe_text(value: Any, max_length: int = MAX_DESC) -> str:
    """Free text from outside (ResultDesc, messages): cleaned and bounded; lists/objects give ""."""
    if value is None or isinstance(value, dict | list | tuple):
        return ""
    return clean_text(_SURROGATE_RE.sub("", str(value)), max_length).strip()


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
    """A success callback's phone: absent is fine, present must be a number of at most 15 digits."""
    if value is None or value == "":
        return None
    phone = normalise_msisdn(value)
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


def normalise_msisdn(value: Any) -> str | None:
    """254719748260 / "+254719748260" / "0719748260" -> "254719748260"; otherwise the digits as given.

    None for anything that is not a number or text, has no digits or has more than 15 (E.164).
    """
    if value is None or isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer() or abs(value) >= 1e16:
            return None
        value = int(value)
    text = str(value)
    if len(text) > 40:
        return None
    digits = re.sub(r"[^0-9]", "", text)
    if not digits or len(digits) > MAX_MSISDN_DIGITS:
        return None
    if len(digits) == 10 and digits.startswith("0"):
        return "254" + digits[1:]
    if len(digits) == 9 and digits[0] in "17":
        return "254" + digits
    return digits


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
        return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=EAT)
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


def eat_now() -> datetime:
    return datetime.now(EAT)


def daraja_timestamp(now: datetime | None = None) -> str:
    """``YYYYMMDDHHmmss`` in Nairobi time."""
    return (now or eat_now()).astimezone(EAT).strftime("%Y%m%d%H%M%S")


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


def response_json(resp: requests.Response) -> Any:
    """The JSON of a gateway answer, or None when it is not strict JSON (NaN, too deep, binary…)."""
    content = resp.content or b""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = resp.text
    if not text.strip():
        return None
    try:
        return strict_json_loads(text)
    except ValueError:
        return None


def snippet(resp: requests.Response, limit: int = 200) -> str:
    text = safe_text((resp.text or "").replace("\n", " "), limit + 1)
    return text[:limit] + ("…" if len(text) > limit else "")


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


# ------------------------------------------------------------------------------------------------
# HTTP
# ------------------------------------------------------------------------------------------------
RETRY_STATUSES = (502, 503, 504)


def session_with_retries(
    retries: int = 2,
    backoff_factor: float = 0.3,
    allowed_methods: Iterable[str] = ("GET",),
    status_forcelist: Iterable[int] = RETRY_STATUSES,
) -> requests.Session:
    """A Session that retries idempotent calls on connect errors and 502/503/504.

    Only methods in ``allowed_methods`` (default GET: token and status look-ups) are retried on
    read errors and bad statuses. Use ``retries=0`` for the session that sends STK pushes: a POST
    that charges must never be repeated automatically. Callers always pass ``timeout=(connect,
    read)`` themselves; after the last retry the final response is returned (not raised) so the
    caller maps it to GatewayUnavailable.
    """
    session = requests.Session()
    if retries > 0:
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            backoff_factor=backoff_factor,
            status_forcelist=tuple(status_forcelist),
            allowed_methods=frozenset(m.upper() for m in allowed_methods),
            raise_on_status=False,
            respect_retry_after_header=False,
        )
    else:
        retry = Retry(total=0, connect=0, read=0, status=0, redirect=0, other=0, raise_on_status=False)
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def unavailable_from_exception(
    gateway: str, action: str, exc: requests.RequestException, *, charging: bool
) -> GatewayUnavailable:
    """Map a requests exception to GatewayUnavailable, flagging if a charge may have gone through."""
    if isinstance(exc, requests.ConnectTimeout):
        return GatewayUnavailable(
            f"{gateway} did not answer in time while connecting ({action}); try again later"
        )
    if isinstance(exc, requests.Timeout):
        if charging:
            return GatewayUnavailable(
                f"{gateway} did not answer in time ({action}). The prompt may still reach the phone: "
                "check the payment status before sending another prompt",
                ambiguous=True,
            )
        return GatewayUnavailable(f"{gateway} did not answer in time ({action}); try again later")
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        if charging and not isinstance(reason, NewConnectionError):
            return GatewayUnavailable(
                f"Lost the connection to {gateway} ({action}). The prompt may still reach the phone: "
                "check the payment status before sending another prompt",
                ambiguous=True,
            )
        return GatewayUnavailable(f"Could not connect to {gateway} ({action}); try again later")
    return GatewayUnavailable(
        f"{gateway} request failed ({action}): {exc.__class__.__name__}", ambiguous=charging
    )


# ------------------------------------------------------------------------------------------------
# Time budget
# ------------------------------------------------------------------------------------------------
class Deadline:
    """The time one request may still spend on gateway calls.

    ``timeout(connect, read)`` gives the ``(connect, read)`` timeouts for the next HTTP call,
    scaled down so that connect + read never exceeds the time left: a call that fails at its
    timeout still ends inside the budget. When less than MIN_CALL_SECONDS is left it raises
    GatewayUnavailable(ambiguous=False): the call is not started, so nothing was sent.
    ``budget=None`` means no limit (the configured timeouts as they are).
    """

    def __init__(
        self, budget: float | None, *, gateway: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.budget = budget
        self.gateway = gateway
        self._clock = clock
        self._end = None if budget is None else clock() + float(budget)

    def left(self) -> float | None:
        return None if self._end is None else self._end - self._clock()

    def has_time(self, seconds: float = MIN_CALL_SECONDS) -> bool:
        left = self.left()
        return left is None or left >= seconds

    def spent(self, action: str) -> GatewayUnavailable:
        return GatewayUnavailable(
            f"{self.gateway} took too long ({action}): the {self.budget:g} s allowed for one request "
            "were used up before anything was sent; try again in a minute",
            ambiguous=False,
        )

    def timeout(self, connect: float, read: float, action: str) -> tuple[float, float]:
        left = self.left()
        if left is None or connect + read <= 0:
            return (connect, read)
        if left < MIN_CALL_SECONDS:
            raise self.spent(action)
        scale = min(1.0, left / (connect + read))
        return (connect * scale, read * scale)


def call_with_retries(
    send: Callable[[tuple[float, float]], requests.Response],
    *,
    deadline: Deadline,
    connect: float,
    read: float,
    action: str,
    retries: int = 2,
    backoff_factor: float = 0.3,
    sleep: Callable[[float], Any] = time.sleep,
) -> requests.Response:
    """Send an idempotent request (token fetch, status look-up) with retries inside ``deadline``.

    ``send(timeout)`` makes one HTTP call. Connection errors (connect timeouts included) and
    502/503/504 are retried up to ``retries`` times (no pause before the first retry, then
    ``backoff_factor * 2**n`` s, like urllib3). A read timeout is not retried: the server already
    had the whole read timeout, and the caller (the chase) asks again later. Retries stop when the
    deadline has no time left for another call: the last error is raised or the last response
    returned, so the caller maps it to GatewayUnavailable. Never use it for a charge.
    """
    attempt = 0
    while True:
        timeout = deadline.timeout(connect, read, action)
        try:
            resp = send(timeout)
        except requests.ReadTimeout:
            raise
        except (requests.ConnectionError, requests.Timeout):
            if attempt >= retries or not _wait_before_retry(attempt, deadline, backoff_factor, sleep):
                raise
        else:
            if resp.status_code not in RETRY_STATUSES or attempt >= retries:
                return resp
            if not _wait_before_retry(attempt, deadline, backoff_factor, sleep):
                return resp
        attempt += 1


def _wait_before_retry(
    attempt: int, deadline: Deadline, backoff_factor: float, sleep: Callable[[float], Any]
) -> bool:
    """Sleep before retry number ``attempt + 1``; False when the deadline leaves no time for it."""
    pause = backoff_factor * 2**attempt if attempt >= 1 else 0.0
    if not deadline.has_time(pause + MIN_CALL_SECONDS):
        return False
    if pause > 0:
        sleep(pause)
    return True
