"""Daraja C2B callbacks for the till: validation and confirmation.

Authenticated by the secret token in the path (and the optional IP allow-list), stored
verbatim before parsing, answered with the JSON Daraja documents. A confirmation is idempotent
on TransID: a replay is acknowledged and recorded as a duplicate.
"""

import json

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ledger.callbacks import callback_store, client_ip, ip_is_allowed, token_is_valid
from ledger.models import CallbackOutcome, CallbackSource
from reconciliation.services.errors import InvalidC2BPayload
from reconciliation.services.receipts import c2b_draft, receipt_record_c2b

CONFIRMATION_ACK = {"ResultCode": 0, "ResultDesc": "Success"}
VALIDATION_ACCEPTED = {"ResultCode": "0", "ResultDesc": "Accepted"}
FORBIDDEN = {"detail": "Unknown callback."}


def _authorised(request, token) -> bool:
    return token_is_valid(token) and ip_is_allowed(client_ip(request))


def _body(request):
    try:
        return json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidC2BPayload("Not a C2B payment: the body is not JSON")


def _finish(log, outcome, detail="", receipt=""):
    log.outcome = outcome
    log.detail = detail[:2000]
    log.receipt = receipt[:20]
    log.attempts += 1
    from django.utils import timezone

    log.processed_at = timezone.now()
    log.save(update_fields=["outcome", "detail", "receipt", "attempts", "processed_at"])


@csrf_exempt
@require_POST
def c2b_confirmation(request, token):
    if not _authorised(request, token):
        return JsonResponse(FORBIDDEN, status=403)
    log = callback_store(request, source=CallbackSource.C2B_CONFIRMATION)
    try:
        receipt, created = receipt_record_c2b(payload=_body(request))
    except InvalidC2BPayload as exc:
        _finish(log, CallbackOutcome.ERROR, exc.message)
        return JsonResponse({"ResultCode": 1, "ResultDesc": exc.message}, status=400)
    _finish(
        log,
        CallbackOutcome.APPLIED if created else CallbackOutcome.DUPLICATE,
        "Till receipt recorded." if created else "Receipt already recorded; nothing changed.",
        receipt.code,
    )
    return JsonResponse(CONFIRMATION_ACK)


@csrf_exempt
@require_POST
def c2b_validation(request, token):
    """We accept every payment to the till: the money is real; reconciliation decides what it pays for."""
    if not _authorised(request, token):
        return JsonResponse(FORBIDDEN, status=403)
    log = callback_store(request, source=CallbackSource.C2B_VALIDATION)
    try:
        draft = c2b_draft(_body(request))
    except InvalidC2BPayload as exc:
        _finish(log, CallbackOutcome.ERROR, exc.message)
        return JsonResponse({"ResultCode": "C2B00016", "ResultDesc": "Rejected"}, status=400)
    _finish(log, CallbackOutcome.APPLIED, "Accepted.", draft.code)
    return JsonResponse(VALIDATION_ACCEPTED)
