"""HTTP JSON edge for payments: the storefront's STK push and polling, and the gateway callbacks.

Thin: parse, call one service, map domain errors to status codes. Never a 500 for bad input.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.http import JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from django_ratelimit.core import is_ratelimited

from console.kernel.phones import InvalidPhoneNumber, normalise_msisdn
from ledger import selectors, services
from ledger.callbacks import (
    IP_NOT_ALLOWED,
    TOO_LARGE,
    callback_accept,
    callback_refuse,
    callback_store,
    client_ip,
    ip_is_allowed,
    read_body,
    stk_token_is_valid,
)
from ledger.gateways import CallbackParseError
from ledger.models import CallbackOutcome, CallbackSource, StkStatus

logger = logging.getLogger(__name__)

NOT_JSON = "Send a JSON object."
NOT_UTF8 = "Send the JSON as UTF-8 text."
TOO_DEEP = "The JSON is nested too deeply; send a flat object."
BODY_TOO_LARGE = "The request is larger than {limit} bytes; send only the phone numbers and the bundle."
PHONE_NOT_TEXT = 'Send the phone number as text, such as "0712 345 678".'
RECIPIENT_NOT_TEXT = "Enter the number to load the bundle on."
# A payment request is three short fields; anything bigger is a mistake or an attack.
STK_PUSH_MAX_BODY_BYTES = 16 * 1024
_LARGEST_ID = 2**63 - 1  # bigint primary keys
PHONE_REQUIRED = "Enter the M-Pesa phone number that will pay."
BUNDLE_REQUIRED = "Choose a bundle."
BUNDLE_NOT_FOUND = "That bundle is not on sale."
RATE_LIMITED = "Too many payment requests; wait a minute and try again."
ORDER_NOT_FOUND = "No order with that reference."
GATEWAY_FAILED = "M-Pesa could not send the prompt: {reason}"
RETRY_NOT_YET = (
    "The first payment prompt may still be answered, so we cannot send another yet. "
    "Check your phone; this page offers a new prompt once the first can no longer be paid."
)
CALLBACK_ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}


def _error(status: int, message: str, field: str | None = None) -> JsonResponse:
    return JsonResponse({"error": message, "field": field}, status=status)


def _rate(group, request) -> str:
    return settings.STK_RATE_LIMIT


def _limited(request, key: str, value: str) -> bool:
    return is_ratelimited(
        request, group=f"stk_push:{key}", key=lambda g, r: value, rate=_rate, increment=True
    )


@csrf_exempt
@require_POST
def stk_push(request):
    """POST {"phone_number", "recipient_phone"?, "bundle"} -> 201 with the order's reference."""
    if _limited(request, "ip", client_ip(request) or "unknown"):
        return _error(429, RATE_LIMITED)
    raw = request.read(STK_PUSH_MAX_BODY_BYTES + 1)  # bounded: never the whole of a huge body
    if len(raw) > STK_PUSH_MAX_BODY_BYTES:
        return _error(413, BODY_TOO_LARGE.format(limit=STK_PUSH_MAX_BODY_BYTES))
    try:
        data = json.loads(raw.decode("utf-8") or "null", parse_constant=_no_json_constant)
    except UnicodeDecodeError:
        return _error(400, NOT_UTF8)
    except RecursionError:
        return _error(400, TOO_DEEP)
    except ValueError:  # not JSON, NaN/Infinity, an integer over Python's digit limit
        return _error(400, NOT_JSON)
    if not isinstance(data, dict):
        return _error(400, NOT_JSON)

    phone = data.get("phone_number")
    if phone is None or phone == "":
        return _error(400, PHONE_REQUIRED, "phone_number")
    if not _phone_like(phone):
        return _error(400, PHONE_NOT_TEXT, "phone_number")
    recipient = data.get("recipient_phone")
    if recipient not in (None, "") and not _phone_like(recipient):
        return _error(400, RECIPIENT_NOT_TEXT, "recipient_phone")
    bundle_key = data.get("bundle")
    if bundle_key in (None, "") or isinstance(bundle_key, bool) or not isinstance(bundle_key, str | int):
        return _error(400, BUNDLE_REQUIRED, "bundle")
    if not _bundle_key_plausible(bundle_key):
        return _error(404, BUNDLE_NOT_FOUND, "bundle")

    try:
        payer = normalise_msisdn(str(phone))
    except InvalidPhoneNumber as exc:
        return _error(400, str(exc), "phone_number")
    if recipient not in (None, ""):
        try:
            normalise_msisdn(str(recipient))
        except InvalidPhoneNumber as exc:
            return _error(400, str(exc), "recipient_phone")

    bundle = selectors.bundle_for_sale(bundle_key)
    if bundle is None:
        return _error(404, BUNDLE_NOT_FOUND, "bundle")
    if _limited(request, "phone", payer):
        return _error(429, RATE_LIMITED, "phone_number")

    try:
        checkout = services.stk_checkout(
            bundle=bundle, payer_msisdn=payer, recipient_msisdn=str(recipient) if recipient else None
        )
    except services.InvalidOrderPhone as exc:
        return _error(400, exc.message, exc.field)
    except services.BundleNotAvailable as exc:
        return _error(404, exc.message, "bundle")
    except services.PromptAlreadyWaiting as exc:
        # A second tap on Pay: the caller follows the prompt already on the phone.
        return _order_created(exc.order, status=200, duplicate=True)
    order = checkout.order
    if checkout.failed:
        return JsonResponse(
            {
                "error": GATEWAY_FAILED.format(reason=checkout.failed),
                "field": None,
                "reference": order.reference,
                "status": "failed",
            },
            status=502,
        )
    if checkout.unknown:
        # M-Pesa did not answer the send: the prompt may still reach the phone. Follow the order.
        return _order_created(order, status=202, message=order.status_reason)
    return _order_created(order, status=201)


def _no_json_constant(name: str):
    # NaN and Infinity are not JSON (Python's json accepts them by default).
    raise ValueError(name)


def _phone_like(value) -> bool:
    """Text, or a positive whole number (some clients send 254712345678 unquoted)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 < value < 10**15
    return isinstance(value, str) and len(value) <= 64


def _bundle_key_plausible(key: str | int) -> bool:
    """A slug of letters, digits, - and _, or an id in range: anything else cannot be on sale."""
    if isinstance(key, int):
        return 0 < key <= _LARGEST_ID
    key = key.strip()
    if key.isascii() and key.isdigit():
        return len(key) <= 18 and int(key) > 0
    return 0 < len(key) <= 100 and key.isascii() and key.replace("-", "").replace("_", "").isalnum()


def _order_created(order, *, status: int, duplicate: bool = False, message: str = "") -> JsonResponse:
    body = {
        "reference": order.reference,
        "status": order.status,
        "amount": str(order.price),
        "bundle": order.bundle.name,
        "poll_url": reverse("ledger:order_status", kwargs={"reference": order.reference}),
    }
    if duplicate:
        body["duplicate"] = True
    if message:
        body["message"] = message
    return JsonResponse(body, status=status)


@require_GET
def order_status(request, reference: str):
    """GET -> the order's status in plain words, for the storefront to poll."""
    order = selectors.order_by_reference(reference)
    if order is None:
        return _error(404, ORDER_NOT_FOUND, "reference")
    allowed, _why = services.order_retry_allowed(order)
    body = {
        **selectors.order_status_payload(order),
        # A new prompt only once the first can no longer be paid (the services' rule, not the page's).
        "retry_allowed": allowed,
        "retry_url": reverse("ledger:order_retry", kwargs={"reference": order.reference}),
    }
    response = JsonResponse(body)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def order_retry(request, reference: str):
    """POST (CSRF-protected, rate-limited like a push) -> send the order's PIN prompt again.

    409 while the first prompt may still be paid (services.order_retry_allowed); 201 when sent,
    202 when M-Pesa did not answer the send, 502 when it refused. Never a prompt otherwise.
    """
    if _limited(request, "ip", client_ip(request) or "unknown"):
        return _error(429, RATE_LIMITED)
    order = selectors.order_by_reference(reference)
    if order is None:
        return _error(404, ORDER_NOT_FOUND, "reference")
    if not services.order_retry_allowed(order)[0]:
        return _error(409, RETRY_NOT_YET)
    if _limited(request, "phone", order.payer_msisdn):
        return _error(429, RATE_LIMITED)
    try:
        stk = services.order_retry(order=order)
    except services.OrderNotRetryable:  # another tab sent it first
        return _error(409, RETRY_NOT_YET)
    except services.StkSendFailed as exc:
        return _error(502, GATEWAY_FAILED.format(reason=exc.message))
    order.refresh_from_db()
    if stk.status == StkStatus.UNKNOWN:
        return _order_created(order, status=202, message=order.status_reason)
    return _order_created(order, status=201)


# ---------------------------------------------------------------------------------------------
# Gateway callbacks: authenticate, check the shape, store, acknowledge, queue. Nothing is applied
# in the request: the worker confirms a success with the gateway's status query first.
# ---------------------------------------------------------------------------------------------
CALLBACK_NOT_FOUND = {"ResultCode": 1, "ResultDesc": "Not found"}
CALLBACK_FORBIDDEN = {"ResultCode": 1, "ResultDesc": "Forbidden"}
WRONG_TOKEN = "Wrong callback token"


def _callback(request, token: str, source: str):
    if request.method != "POST":
        return JsonResponse({"ResultCode": 1, "ResultDesc": "POST only"}, status=405)
    if not stk_token_is_valid(token):
        return callback_refuse(
            request, source=source, detail=WRONG_TOKEN, status=404, answer=CALLBACK_NOT_FOUND
        )
    ip = client_ip(request)
    if not ip_is_allowed(ip):
        detail = IP_NOT_ALLOWED.format(ip=ip)
        return callback_refuse(request, source=source, detail=detail, status=403, answer=CALLBACK_FORBIDDEN)

    body = read_body(request)
    if body.too_large:
        detail = TOO_LARGE.format(size=body.size, limit=settings.CALLBACK_MAX_BODY_BYTES)
        callback_store(request, source=source, body=body, outcome=CallbackOutcome.REJECTED, detail=detail)
        return JsonResponse({"ResultCode": 1, "ResultDesc": detail}, status=413)
    try:
        services.callback_check(source=source, body=body.data)
    except CallbackParseError as exc:
        rejected = CallbackOutcome.REJECTED
        callback_store(request, source=source, body=body, outcome=rejected, detail=exc.message)
        return JsonResponse({"ResultCode": 1, "ResultDesc": exc.message}, status=400)
    callback_accept(request, source=source, body=body)
    return JsonResponse(CALLBACK_ACCEPTED)


@csrf_exempt
def payhero_callback(request, token: str):
    return _callback(request, token, CallbackSource.PAYHERO)


@csrf_exempt
def daraja_callback(request, token: str):
    return _callback(request, token, CallbackSource.DARAJA)
