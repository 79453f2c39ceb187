"""PayHero Kenya API v2 client (https://backend.payhero.co.ke/api/v2).

- ``POST /payments`` sends the STK prompt (Basic auth). The answer's ``reference`` is PayHero's own
  opaque id (sometimes 10 characters like an M-Pesa code, sometimes a UUID): it is kept as
  ``gateway_reference`` and never treated as the M-Pesa receipt.
- ``GET /transaction-status?reference=…`` gives SUCCESS / FAILED / QUEUED (and, per third-party
  clients, PENDING). The receipt is in ``provider_reference`` or ``third_party_reference``; it is
  kept only when it has the M-Pesa shape, and an unreadable amount is None (the answer is trusted
  for what it says, never refused for a detail).
- The callback has no signature, so callers should confirm a success with ``query_status``. A
  success callback must still carry a plausible amount and an M-Pesa-shaped receipt (nested
  ``response.MpesaReceiptNumber``; flat ``provider_reference``), else CallbackParseError.

Time budget: one push (``initiate_stk``) or status look-up spends at most ``request_budget``
seconds on PayHero: settings.GATEWAY_REQUEST_BUDGET, **25 s**, below gunicorn's default worker
timeout of **30 s**. Each call's (connect, read) timeouts are shrunk so that connect + read never
exceeds the time left; a push that times out is GatewayUnavailable(ambiguous=True).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from console.kernel.phones import local_msisdn, try_normalise_msisdn

from .base import (
    DEFAULT_REQUEST_BUDGET,
    CallbackParseError,
    Gateway,
    GatewayError,
    GatewayRejected,
    GatewayUnavailable,
    StatusQuery,
    StkAccepted,
    StkPushRequest,
    StkResult,
    describe_result,
    status_for_result_code,
)
from .clean import (
    clean_raw,
    safe_text,
)
from .http import (
    Deadline,
    call_with_retries,
    response_json,
    session_with_retries,
    snippet,
    unavailable_from_exception,
)
from .values import (
    amount_or_none,
    error_message_from,
    identifier_or_none,
    load_json_object,
    parse_identifier,
    parse_iso_datetime,
    parse_result_code,
    receipt_or_none,
    result_code_or_none,
    success_amount,
    success_phone,
    success_receipt,
    success_time,
)

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://backend.payhero.co.ke/api/v2"

_STATUS_MAP = {
    "SUCCESS": "success",
    "FAILED": "failed",
    "QUEUED": "pending",
    "PENDING": "pending",
}

# Flat "PayHero Africa" callbacks (§2.6) carry a lowercase status word instead of a ResultCode.
_FLAT_STATUS_MAP = {
    "success": "success",
    "successful": "success",
    "completed": "success",
    "failed": "failed",
    "failure": "failed",
    "cancelled": "failed",
    "canceled": "failed",
    "error": "failed",
}


@dataclass(frozen=True)
class PayHeroConfig:
    base_url: str
    username: str
    password: str
    channel_id: int
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    request_budget: float = DEFAULT_REQUEST_BUDGET  # seconds for one initiate_stk / query_status

    def __post_init__(self) -> None:
        if not self.request_budget > 0:
            raise GatewayError(
                f"GATEWAY_REQUEST_BUDGET must be more than 0 seconds, got {self.request_budget!r}"
            )


def to_local_phone(msisdn: str) -> str:
    """``254712345678`` -> ``0712345678``: the only phone form PayHero's doc shows."""
    return local_msisdn(msisdn)


class PayHeroGateway(Gateway):
    name = "payhero"

    def __init__(self, config: PayHeroConfig, *, session: requests.Session | None = None) -> None:
        self.config = config
        self._base = config.base_url.rstrip("/")
        self._timeout = (config.connect_timeout, config.read_timeout)
        self._auth = (config.username, config.password)
        # Status look-ups retry (call_with_retries, within the time budget); the charging POST never does.
        self._query_session = session or session_with_retries(retries=0)
        self._charge_session = session or session_with_retries(retries=0)
        self._clock = time.monotonic  # replaceable in tests (the time budget)
        self._sleep = time.sleep  # replaceable in tests (pauses between retries)

    def _deadline(self) -> Deadline:
        return Deadline(self.config.request_budget, gateway="PayHero", clock=self._clock)

    # -- initiate ---------------------------------------------------------------------------
    def initiate_stk(self, req: StkPushRequest) -> StkAccepted:
        payload: dict[str, Any] = {
            "amount": int(req.amount),
            "phone_number": to_local_phone(req.phone),
            "channel_id": int(self.config.channel_id),
            "provider": "m-pesa",
            "external_reference": req.order_reference,
            "callback_url": req.callback_url,
        }
        if req.customer_name:
            payload["customer_name"] = req.customer_name
        url = f"{self._base}/payments"
        action = "sending the payment prompt"
        timeout = self._deadline().timeout(*self._timeout, action)
        try:
            resp = self._charge_session.post(url, json=payload, auth=self._auth, timeout=timeout)
        except requests.RequestException as exc:
            raise unavailable_from_exception("PayHero", action, exc, charging=True)
        data = self._check(resp, action, charging=True)
        reference = identifier_or_none(data.get("reference"))
        checkout = identifier_or_none(data.get("CheckoutRequestID")) or ""
        if not reference:
            raise GatewayUnavailable(
                "PayHero accepted the payment prompt but returned no usable reference; "
                "check the PayHero dashboard before sending another prompt",
                ambiguous=True,
                http_status=resp.status_code,
                raw=data,
            )
        return StkAccepted(
            checkout_request_id=checkout,
            merchant_request_id=identifier_or_none(data.get("MerchantRequestID")) or "",
            gateway_reference=reference,
            raw_request=dict(payload),
            raw_response=clean_raw(data),
        )

    # -- status -----------------------------------------------------------------------------
    def query_status(self, q: StatusQuery) -> StkResult:
        if not q.gateway_reference:
            raise GatewayError(
                f"Cannot ask PayHero about order {q.order_reference}: no PayHero reference was stored"
            )
        url = f"{self._base}/transaction-status"
        action = "checking the payment status"
        connect, read = self._timeout
        try:
            resp = call_with_retries(
                lambda timeout: self._query_session.get(
                    url, params={"reference": q.gateway_reference}, auth=self._auth, timeout=timeout
                ),
                deadline=self._deadline(),
                connect=connect,
                read=read,
                action=action,
                sleep=self._sleep,
            )
        except requests.RequestException as exc:
            raise unavailable_from_exception("PayHero", action, exc, charging=False)
        data = self._check(resp, action, charging=False)
        raw_status = data.get("status")
        word = safe_text(raw_status, 40).upper() if isinstance(raw_status, str) else ""
        # The doc: anything but SUCCESS is not processed. A garbled word (control characters) is
        # not read as SUCCESS once cleaned: it stays pending and is asked again later.
        status = (
            _STATUS_MAP.get(raw_status.strip().upper(), "pending")
            if isinstance(raw_status, str)
            else "pending"
        )
        receipt = receipt_or_none(data.get("provider_reference")) or receipt_or_none(
            data.get("third_party_reference")
        )
        desc = (
            safe_text(data.get("ResultDesc"))
            or safe_text(data.get("message"))
            or f"PayHero status {word or 'unknown'}"
        )
        return StkResult(
            status=status,
            checkout_request_id=identifier_or_none(data.get("CheckoutRequestID")) or q.checkout_request_id,
            external_reference=identifier_or_none(data.get("external_reference")) or q.order_reference,
            merchant_request_id=identifier_or_none(data.get("MerchantRequestID")),
            result_code=result_code_or_none(data.get("ResultCode")),
            result_desc=desc,
            receipt=receipt,
            amount=amount_or_none(data.get("amount")),
            phone=try_normalise_msisdn(data.get("phone_number") or data.get("phone"), as_reported=True),
            paid_at=parse_iso_datetime(data.get("transaction_date")) if status == "success" else None,
            raw=clean_raw(data),
            gateway_reference=identifier_or_none(data.get("reference")) or q.gateway_reference,
        )

    # -- callback ---------------------------------------------------------------------------
    @classmethod
    def parse_callback(cls, body: bytes) -> StkResult:
        return parse_payhero_callback(body)

    # -- helpers ----------------------------------------------------------------------------
    def _check(self, resp: requests.Response, action: str, *, charging: bool) -> dict:
        data = response_json(resp)
        status = resp.status_code
        if status == 429 or status >= 500:
            message = error_message_from(data, snippet(resp) or f"HTTP {status}")
            raise GatewayUnavailable(
                f"PayHero is having trouble ({action}): HTTP {status} {message}",
                ambiguous=charging and status >= 500,
                http_status=status,
                raw=data,
            )
        if status >= 400:
            if status == 401:
                message = "PayHero refused the API username/password (HTTP 401); check PAYHERO_API_USERNAME"
            else:
                detail = error_message_from(data, snippet(resp) or "no details")
                message = f"PayHero rejected the request ({action}): HTTP {status} {detail}"
            raise GatewayRejected(message, http_status=status, raw=data)
        if not isinstance(data, dict):
            raise GatewayUnavailable(
                f"PayHero sent an unreadable answer ({action}): {snippet(resp) or 'empty body'}",
                ambiguous=charging,
                http_status=status,
                raw=resp.text,
            )
        if data.get("success") is False:
            detail = error_message_from(data, str(data.get("status") or "no details"))
            raise GatewayRejected(
                f"PayHero rejected the request ({action}): {detail}", http_status=status, raw=data
            )
        return data


def parse_payhero_callback(body: bytes, *, now: datetime | None = None) -> StkResult:
    """Parse a PayHero callback: the nested ``{"status", "response": {...}}`` shape (success and the
    UNVERIFIED failure variant) or the flat "PayHero Africa" shape (no ``response`` key).

    A success must carry a plausible amount and an M-Pesa-shaped receipt; the flat shape's
    ``transaction_date``, when given, must be readable and recent (see :mod:`console.kernel.plausible`).
    Anything else is a CallbackParseError; failures are read leniently.
    """
    data = load_json_object(body, "PayHero")
    if "response" in data:
        return _parse_nested(data)
    return _parse_flat(data, now)


def _parse_nested(data: dict) -> StkResult:
    inner = data["response"]
    if not isinstance(inner, dict):
        raise CallbackParseError("PayHero callback 'response' must be an object")
    if "ResultCode" not in inner:
        raise CallbackParseError("PayHero callback is missing response.ResultCode")
    code = parse_result_code(inner.get("ResultCode"), "PayHero callback response.ResultCode")
    checkout = parse_identifier(inner.get("CheckoutRequestID"), "PayHero callback response.CheckoutRequestID")
    external = parse_identifier(inner.get("ExternalReference"), "PayHero callback response.ExternalReference")
    merchant = parse_identifier(inner.get("MerchantRequestID"), "PayHero callback response.MerchantRequestID")
    if not checkout and not external:
        raise CallbackParseError(
            "PayHero callback is missing response.CheckoutRequestID and response.ExternalReference"
        )
    status = status_for_result_code(code)
    if status == "success":
        if data.get("status") is False:
            raise CallbackParseError("PayHero callback says ResultCode 0 but status false")
        amount = success_amount(inner.get("Amount"), "response.Amount")
        receipt = success_receipt(inner.get("MpesaReceiptNumber"), "response.MpesaReceiptNumber")
        phone = success_phone(inner.get("Phone"), "response.Phone")
    else:
        amount = amount_or_none(inner.get("Amount"))
        receipt = receipt_or_none(inner.get("MpesaReceiptNumber"))
        phone = try_normalise_msisdn(inner.get("Phone"), as_reported=True)
    desc = safe_text(inner.get("ResultDesc"))
    return StkResult(
        status=status,
        checkout_request_id=checkout,
        external_reference=external,
        merchant_request_id=merchant,
        result_code=code,
        result_desc=desc or describe_result(code, None),
        receipt=receipt,
        amount=amount,
        phone=phone,
        paid_at=None,  # the nested shape carries no transaction time
        raw=clean_raw(data),
        gateway_reference=None,
    )


def _parse_flat(data: dict, now: datetime | None) -> StkResult:
    raw_status = data.get("status")
    if not isinstance(raw_status, str) or not raw_status.strip():
        raise CallbackParseError(
            "PayHero callback has neither a 'response' object nor a flat 'status' string"
        )
    external = parse_identifier(data.get("external_reference"), "PayHero callback external_reference")
    reference = parse_identifier(data.get("reference"), "PayHero callback reference")
    checkout = parse_identifier(data.get("CheckoutRequestID"), "PayHero callback CheckoutRequestID")
    if not external and not reference:
        raise CallbackParseError("PayHero callback is missing external_reference and reference")
    word = safe_text(raw_status, 40)
    status = _FLAT_STATUS_MAP.get(raw_status.strip().lower(), "pending")  # a garbled word is not success
    raw_code = data.get("ResultCode") if "ResultCode" in data else data.get("result_code")
    code = None if raw_code in (None, "") else parse_result_code(raw_code, "PayHero callback ResultCode")
    if status == "success":
        if code is not None and code != "0":
            raise CallbackParseError(f"PayHero callback says status {word!r} but ResultCode {code}")
        if data.get("success") is False:
            raise CallbackParseError(f"PayHero callback says status {word!r} but success false")
        currency = data.get("currency")
        if currency is not None and (not isinstance(currency, str) or currency.strip().upper() != "KES"):
            raise CallbackParseError("success callback refused: currency is not KES")
        amount = success_amount(data.get("amount"), "amount")
        receipt = success_receipt(data.get("provider_reference"), "provider_reference")
        phone = success_phone(data.get("phone_number") or data.get("phone"), "phone_number")
        raw_date = data.get("transaction_date")
        paid_at = None
        if raw_date not in (None, ""):
            paid_at = success_time(parse_iso_datetime(raw_date), "transaction_date", now)
    else:
        amount = amount_or_none(data.get("amount"))
        receipt = receipt_or_none(data.get("provider_reference"))
        phone = try_normalise_msisdn(data.get("phone_number") or data.get("phone"), as_reported=True)
        paid_at = parse_iso_datetime(data.get("transaction_date"))
    return StkResult(
        status=status,
        checkout_request_id=checkout,
        external_reference=external,
        merchant_request_id=None,
        result_code=code,
        result_desc=safe_text(data.get("message")) or f"PayHero status {word}",
        receipt=receipt,
        amount=amount,
        phone=phone,
        paid_at=paid_at,
        raw=clean_raw(data),
        gateway_reference=reference,
    )
