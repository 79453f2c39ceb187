"""Safaricom Daraja (M-Pesa Express / STK push) client.

- OAuth: ``GET /oauth/v1/generate?grant_type=client_credentials`` with Basic auth. Safaricom says a
  new token invalidates the previous one, so the token is cached: in-process until 60 s before
  expiry behind a lock (concurrent callers trigger one fetch), and optionally in a shared cache
  (anything with Django-cache ``get``/``set``/``delete``) so the web and worker processes do not
  keep invalidating each other's token. A 401 / ``404.001.03`` "Invalid Access Token" drops the
  cached token and retries the call once.
- STK push: ``POST /mpesa/stkpush/v1/processrequest``. Never retried automatically.
- STK query: ``POST /mpesa/stkpushquery/v1/query``. Read-only, so retried (like the token
  fetch) on connection errors, connect timeouts and 502/503/504; a read timeout is not retried.
  Its ``ResultCode`` is a string; the ``500.001.1001`` "The transaction is being processed" error
  means pending. An answer whose ResultCode cannot be read is GatewayUnavailable, never a failure.
- Callback: ``Body.stkCallback``; metadata items looked up by Name (``Balance`` may have no Value);
  failures have no ``CallbackMetadata``; ``TransactionDate`` is EAT ``YYYYMMDDHHmmss``. A success
  (ResultCode 0) must carry a plausible Amount, an M-Pesa-shaped MpesaReceiptNumber and, when it
  has one, a TransactionDate within GATEWAY_TIME_WINDOW_DAYS (3) days; otherwise
  CallbackParseError.

Time budget. One customer request (``initiate_stk``: token fetch + push; also ``query_status``)
spends at most ``request_budget`` seconds on Daraja: settings.GATEWAY_REQUEST_BUDGET, **25 s**,
below gunicorn's default worker timeout of **30 s**, which would otherwise kill the worker (a
hanging token endpoint used to be retried 3 x 20 s). Each call's (connect, read) timeouts are
shrunk so that connect + read never exceeds the time left (with the default 5 s + 20 s the first
call keeps them), and the token fetch's retries stop when the budget is spent. Running out before
the push was sent is GatewayUnavailable(ambiguous=False); a push that times out is
GatewayUnavailable(ambiguous=True): the prompt may have gone out. (The timeouts bound connecting
and each socket read; DNS look-ups are not covered by them.)
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from .base import (
    DARAJA_PROCESSING_ERROR,
    DEFAULT_REQUEST_BUDGET,
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
from .daraja_callback import parse_daraja_callback
from .http import (
    Deadline,
    call_with_retries,
    response_json,
    session_with_retries,
    snippet,
    unavailable_from_exception,
)
from .values import (
    daraja_timestamp,
    error_message_from,
    identifier_or_none,
    result_code_or_none,
)

logger = logging.getLogger(__name__)

SANDBOX_BASE_URL = "https://sandbox.safaricom.co.ke"
PRODUCTION_BASE_URL = "https://api.safaricom.co.ke"
TOKEN_PATH = "/oauth/v1/generate"
STK_PUSH_PATH = "/mpesa/stkpush/v1/processrequest"
STK_QUERY_PATH = "/mpesa/stkpushquery/v1/query"

TRANSACTION_TYPES = ("CustomerBuyGoodsOnline", "CustomerPayBillOnline")
INVALID_TOKEN_CODE = "404.001.03"
TOKEN_MARGIN_SECONDS = 60
DEFAULT_TOKEN_LIFETIME = 3599
REDACTED = "***redacted***"


@dataclass(frozen=True)
class DarajaConfig:
    base_url: str
    consumer_key: str
    consumer_secret: str = field(repr=False)
    shortcode: str
    passkey: str = field(repr=False)
    transaction_type: str = "CustomerBuyGoodsOnline"
    party_b: str = ""
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    request_budget: float = DEFAULT_REQUEST_BUDGET  # seconds for one initiate_stk / query_status

    def __post_init__(self) -> None:
        if self.transaction_type not in TRANSACTION_TYPES:
            raise GatewayError(
                f"DARAJA_TRANSACTION_TYPE must be one of {', '.join(TRANSACTION_TYPES)}, "
                f"got {self.transaction_type!r}"
            )
        if not self.request_budget > 0:
            raise GatewayError(
                f"GATEWAY_REQUEST_BUDGET must be more than 0 seconds, got {self.request_budget!r}"
            )


def stk_password(shortcode: str, passkey: str, timestamp: str) -> str:
    """``base64(BusinessShortCode + Passkey + Timestamp)``."""
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode("ascii")


def _is_processing_error(data: Any) -> bool:
    """The STK query's "The transaction is being processed" error (pending, not failed)."""
    if not isinstance(data, dict) or str(data.get("errorCode") or "") != DARAJA_PROCESSING_ERROR:
        return False
    # 500.001.1001 also covers "Wrong credentials" and "Merchant does not exist"; those stay errors.
    message = str(data.get("errorMessage") or "").lower()
    return "being processed" in message or "under processing" in message


class DarajaGateway(Gateway):
    name = "daraja"

    def __init__(
        self,
        config: DarajaConfig,
        *,
        token_cache: Any = None,
        session: requests.Session | None = None,
    ) -> None:
        self.config = config
        self._base = config.base_url.rstrip("/")
        self._timeout = (config.connect_timeout, config.read_timeout)
        self._party_b = config.party_b or config.shortcode
        # No retries inside requests/urllib3: the token fetch and the query retry in
        # call_with_retries (which knows the time budget); the STK push is never retried.
        self._token_session = session or session_with_retries(retries=0)
        self._query_session = session or session_with_retries(retries=0)
        self._charge_session = session or session_with_retries(retries=0)
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._token_valid_until = 0.0  # on self._clock
        self._clock = time.monotonic  # replaceable in tests (token expiry and the time budget)
        self._sleep = time.sleep  # replaceable in tests (pauses between retries)
        self._token_cache = token_cache
        digest = hashlib.sha256(f"{self._base}|{config.consumer_key}".encode()).hexdigest()[:16]
        self._token_cache_key = f"tillbook:daraja-token:{digest}"

    # -- OAuth ------------------------------------------------------------------------------
    def _deadline(self) -> Deadline:
        return Deadline(self.config.request_budget, gateway="Daraja", clock=self._clock)

    def get_access_token(self, deadline: Deadline | None = None) -> str:
        """A valid bearer token; at most one fetch at a time in this process, within ``deadline``."""
        deadline = deadline or self._deadline()
        left = deadline.left()
        if not self._token_lock.acquire(timeout=-1 if left is None else max(0.0, left)):
            raise deadline.spent("waiting for another request to get an access token")
        try:
            if self._token and self._clock() < self._token_valid_until:
                return self._token
            shared = self._read_shared_token()
            if shared:
                return shared
            token, lifetime = self._fetch_token(deadline)
            self._remember(token, lifetime)
            self._write_shared_token(token, lifetime)
            return token
        finally:
            self._token_lock.release()

    def invalidate_token(self, bad_token: str | None = None) -> None:
        """Forget the cached token (only if it is still ``bad_token``, when given)."""
        with self._token_lock:
            if bad_token is None or self._token == bad_token:
                self._token = None
                self._token_valid_until = 0.0
            if self._token_cache is not None:
                try:
                    value = self._token_cache.get(self._token_cache_key)
                    cached = value.get("access_token") if isinstance(value, dict) else None
                    if bad_token is None or cached == bad_token:
                        self._token_cache.delete(self._token_cache_key)
                except Exception:  # noqa: BLE001 - the shared cache is an optimisation only
                    logger.warning("Daraja token cache unavailable while invalidating", exc_info=True)

    def _remember(self, token: str, lifetime: float) -> None:
        self._token = token
        self._token_valid_until = self._clock() + max(0.0, lifetime - TOKEN_MARGIN_SECONDS)

    def _read_shared_token(self) -> str | None:
        if self._token_cache is None:
            return None
        try:
            value = self._token_cache.get(self._token_cache_key)
        except Exception:  # noqa: BLE001
            logger.warning("Daraja token cache unavailable; fetching a token directly", exc_info=True)
            return None
        if not isinstance(value, dict) or not value.get("access_token"):
            return None
        remaining = float(value.get("expires_at", 0)) - time.time()
        if remaining <= TOKEN_MARGIN_SECONDS:
            return None
        self._remember(value["access_token"], remaining)
        return value["access_token"]

    def _write_shared_token(self, token: str, lifetime: float) -> None:
        if self._token_cache is None:
            return
        ttl = int(lifetime - TOKEN_MARGIN_SECONDS)
        if ttl <= 0:
            return
        try:
            self._token_cache.set(
                self._token_cache_key, {"access_token": token, "expires_at": time.time() + lifetime}, ttl
            )
        except Exception:  # noqa: BLE001
            logger.warning("Daraja token cache unavailable; token kept in this process only", exc_info=True)

    def _fetch_token(self, deadline: Deadline) -> tuple[str, float]:
        url = f"{self._base}{TOKEN_PATH}"
        action = "getting an access token"
        try:
            resp = call_with_retries(
                lambda timeout: self._token_session.get(
                    url,
                    params={"grant_type": "client_credentials"},
                    auth=(self.config.consumer_key, self.config.consumer_secret),
                    timeout=timeout,
                ),
                deadline=deadline,
                connect=self.config.connect_timeout,
                read=self.config.read_timeout,
                action=action,
                sleep=self._sleep,
            )
        except requests.RequestException as exc:
            raise unavailable_from_exception("Daraja", action, exc, charging=False)
        data = response_json(resp)
        if resp.status_code == 429 or resp.status_code >= 500:
            raise GatewayUnavailable(
                f"Daraja is having trouble (getting an access token): HTTP {resp.status_code} "
                f"{error_message_from(data, snippet(resp))}".strip(),
                http_status=resp.status_code,
                raw=data,
            )
        if resp.status_code >= 400:
            raise GatewayRejected(
                "Daraja refused the consumer key/secret (getting an access token): "
                f"HTTP {resp.status_code} {error_message_from(data, snippet(resp) or 'no details')}; "
                "check DARAJA_CONSUMER_KEY and DARAJA_CONSUMER_SECRET",
                code=str(data.get("errorCode")) if isinstance(data, dict) and data.get("errorCode") else None,
                http_status=resp.status_code,
                raw=data,
            )
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token.strip() or not token.isprintable() or len(token) > 4096:
            raise GatewayUnavailable(
                f"Daraja sent a token answer without a usable access_token: {snippet(resp) or 'empty body'}",
                http_status=resp.status_code,
            )
        try:
            lifetime = float(data.get("expires_in", DEFAULT_TOKEN_LIFETIME))
        except (TypeError, ValueError):
            lifetime = DEFAULT_TOKEN_LIFETIME
        if not 0 < lifetime <= 86400:  # NaN, negative or absurd: assume the documented hour
            lifetime = DEFAULT_TOKEN_LIFETIME
        return token.strip(), lifetime

    # -- authorised POST with one retry on an invalid token ---------------------------------
    def _post(
        self,
        session: requests.Session,
        path: str,
        payload: dict,
        action: str,
        *,
        charging: bool,
        deadline: Deadline,
    ):
        url = f"{self._base}{path}"
        connect, read = self._timeout
        for attempt in (1, 2):
            token = self.get_access_token(deadline)
            headers = {"Authorization": f"Bearer {token}"}
            try:
                if charging:  # one call, never repeated; not started when the budget is spent
                    resp = session.post(
                        url, json=payload, headers=headers, timeout=deadline.timeout(connect, read, action)
                    )
                else:
                    resp = call_with_retries(
                        lambda timeout, headers=headers: session.post(
                            url, json=payload, headers=headers, timeout=timeout
                        ),
                        deadline=deadline,
                        connect=connect,
                        read=read,
                        action=action,
                        sleep=self._sleep,
                    )
            except requests.RequestException as exc:
                raise unavailable_from_exception("Daraja", action, exc, charging=charging)
            if attempt == 1 and self._is_invalid_token(resp):
                logger.info("Daraja said the access token is invalid; fetching a new one and retrying once")
                self.invalidate_token(token)
                continue
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _is_invalid_token(resp: requests.Response) -> bool:
        if resp.status_code == 401:
            return True
        data = response_json(resp)
        return isinstance(data, dict) and str(data.get("errorCode") or "") == INVALID_TOKEN_CODE

    def _check(self, resp: requests.Response, action: str, *, charging: bool) -> dict:
        data = response_json(resp)
        status = resp.status_code
        code = str(data.get("errorCode")) if isinstance(data, dict) and data.get("errorCode") else None
        message = error_message_from(data, snippet(resp) or f"HTTP {status}")
        suffix = f" ({code})" if code else f" (HTTP {status})"
        if status == 429 or status >= 500:
            raise GatewayUnavailable(
                f"Daraja is having trouble ({action}): {message}{suffix}",
                # A Daraja error body means Daraja refused it; a bare 5xx (proxy) may hide a sent prompt.
                ambiguous=charging and status >= 500 and code is None,
                code=code,
                http_status=status,
                raw=data,
            )
        if status >= 400:
            raise GatewayRejected(
                f"Daraja rejected the request ({action}): {message}{suffix}",
                code=code,
                http_status=status,
                raw=data,
            )
        if not isinstance(data, dict):
            raise GatewayUnavailable(
                f"Daraja sent an unreadable answer ({action}): {snippet(resp) or 'empty body'}",
                ambiguous=charging,
                http_status=status,
                raw=resp.text,
            )
        return data

    # -- STK push ---------------------------------------------------------------------------
    def initiate_stk(self, req: StkPushRequest) -> StkAccepted:
        timestamp = daraja_timestamp()  # generated once: Password and Timestamp must agree
        payload = {
            "BusinessShortCode": self.config.shortcode,
            "Password": stk_password(self.config.shortcode, self.config.passkey, timestamp),
            "Timestamp": timestamp,
            "TransactionType": self.config.transaction_type,
            "Amount": int(req.amount),
            "PartyA": req.phone,
            "PartyB": self._party_b,
            "PhoneNumber": req.phone,
            "CallBackURL": req.callback_url,
            "AccountReference": req.account_reference or req.order_reference[:12],
            "TransactionDesc": req.description or "Payment",
        }
        action = "sending the payment prompt"
        deadline = self._deadline()  # token fetch + push
        resp = self._post(
            self._charge_session, STK_PUSH_PATH, payload, action, charging=True, deadline=deadline
        )
        data = self._check(resp, action, charging=True)
        response_code = result_code_or_none(data.get("ResponseCode"))
        if response_code != "0":
            raise GatewayRejected(
                "Daraja did not accept the payment prompt: "
                f"{error_message_from(data, 'no details')} (ResponseCode {response_code})",
                code=response_code,
                http_status=resp.status_code,
                raw=data,
            )
        checkout = identifier_or_none(data.get("CheckoutRequestID"))
        if not checkout:
            raise GatewayUnavailable(
                "Daraja accepted the payment prompt but returned no usable CheckoutRequestID; "
                "check the M-Pesa portal before sending another prompt",
                ambiguous=True,
                http_status=resp.status_code,
                raw=data,
            )
        return StkAccepted(
            checkout_request_id=checkout,
            merchant_request_id=identifier_or_none(data.get("MerchantRequestID")) or "",
            gateway_reference=checkout,
            raw_request={**payload, "Password": REDACTED},
            raw_response=clean_raw(data),
        )

    # -- STK query --------------------------------------------------------------------------
    def query_status(self, q: StatusQuery) -> StkResult:
        checkout = q.checkout_request_id or q.gateway_reference
        if not checkout:
            raise GatewayError(
                f"Cannot ask Daraja about order {q.order_reference}: no CheckoutRequestID was stored"
            )
        timestamp = daraja_timestamp()
        payload = {
            "BusinessShortCode": self.config.shortcode,
            "Password": stk_password(self.config.shortcode, self.config.passkey, timestamp),
            "Timestamp": timestamp,
            "CheckoutRequestID": checkout,
        }
        action = "checking the payment status"
        resp = self._post(
            self._query_session, STK_QUERY_PATH, payload, action, charging=False, deadline=self._deadline()
        )
        data = response_json(resp)
        if _is_processing_error(data):
            return StkResult(
                status="pending",
                checkout_request_id=checkout,
                external_reference=q.order_reference,
                merchant_request_id=None,
                result_code=DARAJA_PROCESSING_ERROR,
                result_desc=safe_text(data.get("errorMessage")) or "The transaction is being processed",
                receipt=None,
                amount=None,
                phone=None,
                paid_at=None,
                raw=clean_raw(data),
                gateway_reference=checkout,
            )
        data = self._check(resp, action, charging=False)
        raw_code = data.get("ResultCode")
        code = result_code_or_none(raw_code)
        if code is None and raw_code not in (None, ""):
            raise GatewayUnavailable(
                "Daraja answered the status query with an unreadable ResultCode "
                f"({safe_text(repr(raw_code), 40)}); try again later",
                http_status=resp.status_code,
                raw=data,
            )
        status = status_for_result_code(code) if code is not None else "pending"
        desc = safe_text(data.get("ResultDesc")) or safe_text(data.get("ResponseDescription"))
        return StkResult(
            status=status,
            checkout_request_id=identifier_or_none(data.get("CheckoutRequestID")) or checkout,
            external_reference=q.order_reference,
            merchant_request_id=identifier_or_none(data.get("MerchantRequestID")),
            result_code=code,
            result_desc=desc or describe_result(code, None),
            receipt=None,  # the query never carries the receipt; only the callback does
            amount=None,
            phone=None,
            paid_at=None,
            raw=clean_raw(data),
            gateway_reference=checkout,
        )

    # -- callback ---------------------------------------------------------------------------
    @classmethod
    def parse_callback(cls, body: bytes) -> StkResult:
        return parse_daraja_callback(body)
