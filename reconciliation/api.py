"""Daraja C2B callbacks for the till: validation and confirmation.

Authenticated by the secret C2B token in the path (and the optional IP allow-list); a request
that fails is kept only as an excerpt and rate-limited per client IP. Bodies are read bounded
(413 over CALLBACK_MAX_BODY_BYTES) and checked before anything is recorded: a malformed or
out-of-range body is stored as rejected and answered 400, never 500, and never becomes a
receipt. A good confirmation is stored first (committed), then recorded; it is idempotent on
TransID, so a replay is acknowledged and logged as a duplicate.
"""

from django.conf import settings
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ledger.callbacks import (
    IP_NOT_ALLOWED,
    TOO_LARGE,
    c2b_token_is_valid,
    callback_refuse,
    callback_store,
    client_ip,
    ip_is_allowed,
    read_body,
)
from ledger.models import CallbackLog, CallbackOutcome, CallbackSource
from reconciliation.services.errors import InvalidC2BPayload
from reconciliation.services.receipts import c2b_confirmation_apply, c2b_draft, c2b_payload

CONFIRMATION_ACK = {"ResultCode": 0, "ResultDesc": "Success"}
VALIDATION_ACCEPTED = {"ResultCode": "0", "ResultDesc": "Accepted"}
VALIDATION_ACCEPTED_DETAIL = "Accepted."
# Daraja's documented rejection codes: C2B00013 invalid amount, C2B00016 other error.
VALIDATION_REJECTED_AMOUNT = {"ResultCode": "C2B00013", "ResultDesc": "Rejected"}
VALIDATION_REJECTED_OTHER = {"ResultCode": "C2B00016", "ResultDesc": "Rejected"}
FORBIDDEN = {"ResultCode": 1, "ResultDesc": "Forbidden"}
WRONG_TOKEN = "Wrong C2B callback token"


def _refuse(request, *, source: str, detail: str):
    return callback_refuse(request, source=source, detail=detail, status=403, answer=FORBIDDEN)


def _confirmation_rejected(detail: str, field: str | None) -> dict:
    return {"ResultCode": 1, "ResultDesc": detail}


def _validation_rejected(detail: str, field: str | None) -> dict:
    return VALIDATION_REJECTED_AMOUNT if field == "TransAmount" else VALIDATION_REJECTED_OTHER


def _checked(request, token: str, source: str, rejected):
    """(draft, body, None) for a good request, else (None, None, the response to send)."""
    if not c2b_token_is_valid(token):
        return None, None, _refuse(request, source=source, detail=WRONG_TOKEN)
    ip = client_ip(request)
    if not ip_is_allowed(ip):
        return None, None, _refuse(request, source=source, detail=IP_NOT_ALLOWED.format(ip=ip))
    body = read_body(request)
    if body.too_large:
        detail = TOO_LARGE.format(size=body.size, limit=settings.CALLBACK_MAX_BODY_BYTES)
        callback_store(request, source=source, body=body, outcome=CallbackOutcome.REJECTED, detail=detail)
        return None, None, JsonResponse(rejected(detail, None), status=413)
    try:
        draft = c2b_draft(c2b_payload(body.data))
    except InvalidC2BPayload as exc:
        detail = exc.message
        callback_store(request, source=source, body=body, outcome=CallbackOutcome.REJECTED, detail=detail)
        return None, None, JsonResponse(rejected(detail, exc.field), status=400)
    return draft, body, None


@csrf_exempt
@require_POST
def c2b_confirmation(request, token):
    """Record the till payment (Dr M-Pesa till / Cr Unallocated receipts) once per TransID."""
    source = CallbackSource.C2B_CONFIRMATION
    draft, body, refused = _checked(request, token, source, _confirmation_rejected)
    if refused:
        return refused
    log = callback_store(request, source=source, body=body)  # commits before anything is recorded
    c2b_confirmation_apply(log=log, draft=draft)
    return JsonResponse(CONFIRMATION_ACK)


@csrf_exempt
@require_POST
def c2b_validation(request, token):
    """We accept every well-formed payment to the till: the money is real; reconciliation decides
    what it pays for. Nothing is recorded but the request itself."""
    source = CallbackSource.C2B_VALIDATION
    draft, body, refused = _checked(request, token, source, _validation_rejected)
    if refused:
        return refused
    log = callback_store(
        request, source=source, body=body, outcome=CallbackOutcome.APPLIED, detail=VALIDATION_ACCEPTED_DETAIL
    )
    CallbackLog.objects.filter(pk=log.pk).update(
        receipt=draft.code, amount=draft.amount, processed_at=timezone.now(), attempts=1
    )
    return JsonResponse(VALIDATION_ACCEPTED)
