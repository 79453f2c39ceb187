"""PayHero Kenya API v2 client (https://backend.payhero.co.ke/api/v2).

- ``POST /payments`` sends the STK prompt (Basic auth). The answer's ``reference`` is PayHero's own
  opaque id (sometimes 10 characters like an M-Pesa code, sometimes a UUID): it is kept as
  ``gateway_reference`` and never treated as the M-Pesa receipt.
- ``GET /transaction-status?reference=…`` gives SUCCESS / FAILED / QUEUED (and, per third-party
  clients, PENDING). The receipt is in ``provider_reference`` or ``third_party_reference``.
- The callback has no signature, so callers should confirm a success with ``query_status``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests

from console.phones import local_msisdn

from .base import (
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
    error_message_from,
    load_json_object,
    normalise_msisdn,
    normalise_result_code,
    parse_iso_datetime,
    response_json,
    session_with_retries,
    snippet,
    status_for_result_code,
    to_decimal,
    unavailable_from_exception,
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
        # Status look-ups retry on connect errors / 502-504; the charging POST never does.
        self._query_session = session or session_with_retries()
        self._charge_session = session or session_with_retries(retries=0)

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
        try:
            resp = self._charge_session.post(url, json=payload, auth=self._auth, timeout=self._timeout)
        except requests.RequestException as exc:
            raise unavailable_from_exception("PayHero", "sending the payment prompt", exc, charging=True)
        data = self._check(resp, "sending the payment prompt", charging=True)
        reference = data.get("reference")
        checkout = data.get("CheckoutRequestID") or ""
        if not reference:
            raise GatewayUnavailable(
                "PayHero accepted the payment prompt but returned no reference; "
                "check the PayHero dashboard before sending another prompt",
                ambiguous=True,
                http_status=resp.status_code,
                raw=data,
            )
        return StkAccepted(
            checkout_request_id=str(checkout),
            merchant_request_id=str(data.get("MerchantRequestID") or ""),
            gateway_reference=str(reference),
            raw_request=dict(payload),
            raw_response=data,
        )

    # -- status -----------------------------------------------------------------------------
    def query_status(self, q: StatusQuery) -> StkResult:
        if not q.gateway_reference:
            raise GatewayError(
                f"Cannot ask PayHero about order {q.order_reference}: no PayHero reference was stored"
            )
        url = f"{self._base}/transaction-status"
        try:
            resp = self._query_session.get(
                url, params={"reference": q.gateway_reference}, auth=self._auth, timeout=self._timeout
            )
        except requests.RequestException as exc:
            raise unavailable_from_exception("PayHero", "checking the payment status", exc, charging=False)
        data = self._check(resp, "checking the payment status", charging=False)
        raw_status = str(data.get("status") or "").strip().upper()
        status = _STATUS_MAP.get(raw_status, "pending")  # the doc: anything but SUCCESS is not processed
        receipt = _clean(data.get("provider_reference")) or _clean(data.get("third_party_reference"))
        code = normalise_result_code(data.get("ResultCode"))
        desc = (
            _clean(data.get("ResultDesc"))
            or _clean(data.get("message"))
            or f"PayHero status {raw_status or 'unknown'}"
        )
        return StkResult(
            status=status,
            checkout_request_id=_clean(data.get("CheckoutRequestID")) or q.checkout_request_id,
            external_reference=_clean(data.get("external_reference")) or q.order_reference,
            merchant_request_id=_clean(data.get("MerchantRequestID")),
            result_code=code,
            result_desc=desc,
            receipt=receipt,
            amount=to_decimal(data.get("amount")),
            phone=normalise_msisdn(data.get("phone_number") or data.get("phone")),
            paid_at=parse_iso_datetime(data.get("transaction_date")) if status == "success" else None,
            raw=data,
            gateway_reference=_clean(data.get("reference")) or q.gateway_reference,
        )

    # -- callback ---------------------------------------------------------------------------
    def parse_callback(self, body: bytes) -> StkResult:
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


def _clean(value: Any) -> str | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = str(value).strip()
    return text or None


def parse_payhero_callback(body: bytes) -> StkResult:
    """Parse a PayHero callback: the nested ``{"status", "response": {...}}`` shape (success and the
    UNVERIFIED failure variant) or the flat "PayHero Africa" shape (no ``response`` key)."""
    data = load_json_object(body, "PayHero")
    if "response" in data:
        return _parse_nested(data)
    return _parse_flat(data)


def _parse_nested(data: dict) -> StkResult:
    inner = data["response"]
    if not isinstance(inner, dict):
        raise CallbackParseError("PayHero callback 'response' must be an object")
    if "ResultCode" not in inner:
        raise CallbackParseError("PayHero callback is missing response.ResultCode")
    code = normalise_result_code(inner.get("ResultCode"))
    if code is None:
        raise CallbackParseError("PayHero callback has an empty response.ResultCode")
    checkout = _clean(inner.get("CheckoutRequestID"))
    external = _clean(inner.get("ExternalReference"))
    if not checkout and not external:
        raise CallbackParseError(
            "PayHero callback is missing response.CheckoutRequestID and response.ExternalReference"
        )
    status = status_for_result_code(code)
    desc = str(inner.get("ResultDesc") or "")
    return StkResult(
        status=status,
        checkout_request_id=checkout,
        external_reference=external,
        merchant_request_id=_clean(inner.get("MerchantRequestID")),
        result_code=code,
        result_desc=desc or describe_result(code, None),
        receipt=_clean(inner.get("MpesaReceiptNumber")),
        amount=to_decimal(inner.get("Amount")),
        phone=normalise_msisdn(inner.get("Phone")),
        paid_at=None,  # the nested shape carries no transaction time
        raw=data,
        gateway_reference=None,
    )


def _parse_flat(data: dict) -> StkResult:
    raw_status = data.get("status")
    if not isinstance(raw_status, str) or not raw_status.strip():
        raise CallbackParseError(
            "PayHero callback has neither a 'response' object nor a flat 'status' string"
        )
    external = _clean(data.get("external_reference"))
    reference = _clean(data.get("reference"))
    if not external and not reference:
        raise CallbackParseError("PayHero callback is missing external_reference and reference")
    status = _FLAT_STATUS_MAP.get(raw_status.strip().lower(), "pending")
    code = normalise_result_code(data.get("ResultCode") if "ResultCode" in data else data.get("result_code"))
    return StkResult(
        status=status,
        checkout_request_id=_clean(data.get("CheckoutRequestID")),
        external_reference=external,
        merchant_request_id=None,
        result_code=code,
        result_desc=_clean(data.get("message")) or f"PayHero status {raw_status}",
        receipt=_clean(data.get("provider_reference")),
        amount=to_decimal(data.get("amount")),
        phone=normalise_msisdn(data.get("phone_number") or data.get("phone")),
        paid_at=parse_iso_datetime(data.get("transaction_date")),
        raw=data,
        gateway_reference=reference,
    )
