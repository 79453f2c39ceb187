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

The package by job: this module holds the types, errors, the Gateway interface and result codes;
``clean`` makes text and JSON from outside safe to keep; ``values`` reads and checks the values
of callbacks and status answers; ``http`` holds the retrying session and the time budget.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from .clean import clean_raw, safe_text

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
MAX_ERROR_MESSAGE = 1000

# Seconds one customer request may spend on gateway calls (see GATEWAY_REQUEST_BUDGET).
DEFAULT_REQUEST_BUDGET = 25.0

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
