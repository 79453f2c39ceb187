"""Shared types, errors and helpers for the payment gateway clients.

Nothing in this package touches the ORM or imports Django models; Django settings are only read
in :func:`ledger.gateways.get_gateway`. The gateways talk to M-Pesa (directly through Daraja or via
PayHero) and translate every answer into the small dataclasses below, so the rest of Tillbook never
sees a gateway's raw shape except in the ``raw`` fields kept for audit.

Result codes are the stable contract; ``ResultDesc`` text varies (case, trailing period,
``[STK_CB - ]`` prefixes), so nothing here branches on it.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError
from urllib3.util.retry import Retry

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
MAX_AMOUNT = 250_000

_MSISDN_RE = re.compile(r"^254[17]\d{8}$")

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


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------
class GatewayError(Exception):
    """A gateway call did not give a usable answer. ``message`` is readable by a shop agent."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        raw: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.raw = raw

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

    @abstractmethod
    def parse_callback(self, body: bytes) -> StkResult:
        """Parse a callback body. Raises CallbackParseError on anything unexpected."""


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
    if re.fullmatch(r"-?\d+", text):
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
        data = json.loads(text)
    except ValueError as exc:
        raise CallbackParseError(f"{what} callback is not valid JSON: {exc}")
    if not isinstance(data, dict):
        raise CallbackParseError(f"{what} callback must be a JSON object, got a JSON {type(data).__name__}")
    return data


def to_decimal(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        # str() first so a float like 1.0 becomes Decimal("1.0"), not a binary expansion
        return Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None


def normalise_msisdn(value: Any) -> str | None:
    """254719748260 / "+254719748260" / "0719748260" -> "254719748260"; otherwise the digits as given."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    digits = re.sub(r"\D", "", str(value))
    if not digits:
        return None
    if len(digits) == 10 and digits.startswith("0"):
        return "254" + digits[1:]
    if len(digits) == 9 and digits[0] in "17":
        return "254" + digits
    return digits


def parse_eat_timestamp(value: Any) -> datetime | None:
    """Daraja ``TransactionDate`` (``20191219102115``, int or str, EAT) -> aware datetime or None."""
    if value is None or isinstance(value, bool):
        return None
    text = str(int(value)) if isinstance(value, int | float) else str(value).strip()
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=EAT)
    except ValueError:
        return None


def parse_iso_datetime(value: Any) -> datetime | None:
    """ISO 8601 (``2024-11-26T08:41:14.160604Z``) -> aware datetime; naive values are taken as UTC."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
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
                return value.strip()
            if isinstance(value, dict):
                nested = error_message_from(value, "")
                if nested:
                    return nested
    return fallback


def response_json(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def snippet(resp: requests.Response, limit: int = 200) -> str:
    text = (resp.text or "").strip().replace("\n", " ")
    return text[:limit] + ("…" if len(text) > limit else "")


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
