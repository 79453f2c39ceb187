"""Callbacks: the edge checks the shape and stores; the worker finds the prompt, asks the gateway
to confirm a success, and applies. Nothing from a callback alone moves money."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django_q.tasks import async_task

from console.kernel import queue
from console.kernel.audit import AuditAction, audit_record
from console.kernel.exceptions import DomainError
from console.kernel.plausible import clean_text
from ledger.gateways import CallbackParseError, GatewayError, StkResult, gateway_class, get_gateway
from ledger.models import CallbackLog, CallbackOutcome, StkRequest, StkStatus

from .common import (
    APPLIED,
    CALLBACK_CONFIRMING,
    CALLBACK_NEVER_CONFIRMED,
    CALLBACK_NOT_AUTHENTICATED,
    CALLBACK_NOT_CONFIRMED,
    CALLBACK_SEVERAL_CANDIDATES,
    CALLBACK_UNKNOWN_ORDER,
    DISAGREEMENT,
    PENDING,
    _json_safe,
    _status_query,
)
from .stk import stk_apply_result, unknown_prompt_candidates

# Processors of other apps' callback sources (C2B: reconciliation, which registers them at start-up
# in its AppConfig.ready: ledger never imports the apps above it).
_PROCESSORS: dict[str, Callable[[CallbackLog], str]] = {}
CALLBACK_LEASE = timedelta(minutes=2)  # how long one worker owns a callback it is processing
CALLBACK_MAX_BACKOFF = 600  # seconds between confirmation attempts, at most
OPEN_CALLBACK_OUTCOMES = (CallbackOutcome.RECEIVED, CallbackOutcome.CONFIRMING)


def callback_processor_register(source: str, processor: Callable[[CallbackLog], str]) -> None:
    """Let another app apply its own stored callbacks (retried by the sweeper, re-processed)."""
    _PROCESSORS[source] = processor


def callback_check(*, source: str, body: bytes) -> StkResult:
    """Parse a callback body strictly. Raises CallbackParseError (the edge answers 400)."""
    gateway = gateway_class(source)  # each gateway posts to the callback source named after it
    if gateway is None:
        raise CallbackParseError(f"No STK parser for source {source!r}")
    return gateway.parse_callback(body)


def callback_queue(*, log: CallbackLog) -> None:
    """Hand a stored callback to the worker, inside the transaction that stored it
    (ledger.callbacks.callback_accept).

    The queue is django-q2's ORM broker: the task is a row in the same database, so the callback
    and its task commit together, in one commit, or neither does. A failure here fails the
    request (no 200): the gateway's retry, or stk_chase's status query, brings the payment
    again. Nothing is acknowledged that is not both stored and queued.
    """
    async_task("ledger.tasks.callback_process", log.pk, task_name=f"callback-{log.pk}", broker=queue.broker())


def _callback_claim(log_id: int, *, first: bool, now) -> bool:
    """Take a callback for processing (one worker at a time, by a lease on next_attempt_at)."""
    qs = CallbackLog.objects.filter(pk=log_id, authenticated=True, outcome__in=OPEN_CALLBACK_OUTCOMES)
    qs = qs.filter(attempts=0) if first else qs.filter(next_attempt_at__lte=now)
    return bool(qs.update(next_attempt_at=now + CALLBACK_LEASE, attempts=F("attempts") + 1))


def callback_process_queued(*, log_id: int) -> str | None:
    """The worker's first look at a callback the edge stored. None if another worker has it."""
    if not _callback_claim(log_id, first=True, now=timezone.now()):
        return None
    return callback_process(log=CallbackLog.objects.get(pk=log_id))


def callbacks_sweep(*, now=None, limit: int = 200) -> dict[str, int]:
    """Every minute: process callbacks stored but never processed (a queue or database outage)
    and successes waiting for confirmation whose next attempt is due. Idempotent."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    due = (
        CallbackLog.objects.filter(
            authenticated=True, outcome__in=OPEN_CALLBACK_OUTCOMES, next_attempt_at__lte=now
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    for log_id in list(due):
        if not _callback_claim(log_id, first=False, now=now):
            continue
        try:
            outcome = callback_process(log=CallbackLog.objects.get(pk=log_id), now=now)
        except CallbackParseError:
            outcome = CallbackOutcome.REJECTED
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def _find_stk(result: StkResult) -> StkRequest | None:
    """By CheckoutRequestID first; PayHero also by its reference or our order reference."""
    if result.checkout_request_id:
        stk = StkRequest.objects.filter(checkout_request_id=result.checkout_request_id).first()
        if stk:
            return stk
    if result.gateway_reference:
        stk = StkRequest.objects.filter(gateway_reference=result.gateway_reference).order_by("-pk").first()
        if stk:
            return stk
    if result.external_reference:
        # The latest prompt for the order; a success on it still pays the order.
        return StkRequest.objects.filter(order__reference=result.external_reference).order_by("-pk").first()
    return None


@transaction.atomic
def _adopt_unknown_prompt(stk_id: int, result: StkResult) -> StkRequest | None:
    """Give an unknown send the gateway's ids from its callback (once; never steal another's id)."""
    stk = StkRequest.objects.select_for_update().get(pk=stk_id)
    if stk.checkout_request_id or (
        result.checkout_request_id
        and StkRequest.objects.filter(checkout_request_id=result.checkout_request_id).exists()
    ):
        return None
    stk.checkout_request_id = clean_text(result.checkout_request_id, 64) or None
    stk.gateway_reference = clean_text(result.gateway_reference or result.checkout_request_id, 64)
    stk.merchant_request_id = clean_text(result.merchant_request_id, 64)
    stk.save(update_fields=["checkout_request_id", "gateway_reference", "merchant_request_id"])
    audit_record(
        actor=None,
        action=AuditAction.STK_ADOPT_UNKNOWN,
        obj=stk.order,
        after={"stk": stk.pk, "checkout_request_id": stk.checkout_request_id},
    )
    return stk


def callback_process(*, log: CallbackLog, now=None) -> str:
    """Parse, match, confirm and apply one stored callback; record the outcome. Returns it.

    - a callback that failed authentication is never applied, by any path (stays rejected);
    - a body that does not parse is rejected with the reason;
    - a success is applied only once the gateway's status query confirms it (STK_CONFIRM_SUCCESS):
      the confirmed payment pays the amount asked for; the callback's amount, receipt and phone
      are cross-checks, and a disagreement holds the money for review with both sides shown.
      A query that says pending or cannot be reached leaves the callback *confirming*, retried by
      callbacks_sweep with growing gaps until STK_EXPIRE_AFTER; a query that says failed leaves it
      *unconfirmed* and applies the failure;
    - a failure is applied directly (it moves no money).
    Idempotent: safe to run any number of times on the same log.
    """
    now = now or timezone.now()
    if not log.authenticated:
        return _log_outcome(log, CallbackOutcome.REJECTED, CALLBACK_NOT_AUTHENTICATED)
    if log.source in _PROCESSORS:
        return _PROCESSORS[log.source](log)
    if gateway_class(log.source) is None:
        return _log_outcome(log, CallbackOutcome.APPLIED, "Nothing to apply for this kind of callback.")
    try:
        result = callback_check(source=log.source, body=log.body.encode("utf-8"))
    except CallbackParseError as exc:
        return _log_outcome(log, CallbackOutcome.REJECTED, exc.message)

    stk = _find_stk(result)
    if stk is None and result.status == "success":
        candidates = unknown_prompt_candidates(
            phone=result.phone, amount=result.amount, at=result.paid_at or log.received_at
        )
        if len(candidates) == 1:
            stk = _adopt_unknown_prompt(candidates[0].pk, result)
        elif len(candidates) > 1:
            detail = CALLBACK_SEVERAL_CANDIDATES.format(count=len(candidates))
            return _log_outcome(log, CallbackOutcome.UNKNOWN_ORDER, detail, result=result)
    if stk is None:
        return _log_outcome(log, CallbackOutcome.UNKNOWN_ORDER, CALLBACK_UNKNOWN_ORDER, result=result)

    already_paid = stk.status == StkStatus.SUCCESS and (stk.receipt or not result.receipt)
    if result.status == "success" and settings.STK_CONFIRM_SUCCESS and not already_paid:
        return _confirm_and_apply(log, stk, result, now=now)
    return _apply_and_log(log, stk, result, source="callback")


def _apply_and_log(log: CallbackLog, stk: StkRequest, result: StkResult, *, source: str, disagreement=""):
    try:
        with transaction.atomic():
            applied = stk_apply_result(stk=stk, result=result, source=source, disagreement=disagreement)
            outcome = CallbackOutcome.APPLIED if applied == APPLIED else CallbackOutcome.DUPLICATE
            detail = "" if applied != PENDING else "Still pending: nothing changed."
            if disagreement and applied == APPLIED:
                detail = disagreement
            return _log_outcome(log, outcome, detail, result=result, stk=stk)
    except (DomainError, IntegrityError) as exc:
        detail = getattr(exc, "message", None) or str(exc)
        return _log_outcome(log, CallbackOutcome.ERROR, detail, result=result)


def _confirm_and_apply(log: CallbackLog, stk: StkRequest, claimed: StkResult, *, now) -> str:
    """Ask the gateway (no lock held during HTTP), then apply what it confirms."""
    try:
        answer = get_gateway(stk.gateway).query_status(_status_query(stk))
    except GatewayError as exc:
        return _still_confirming(log, claimed, exc.message, now=now)
    sides = {"callback": _figures(claimed), "gateway": _figures(answer)}
    if answer.status == "pending":
        return _still_confirming(log, claimed, answer.plain_message, now=now, sides=sides)
    if answer.status != "success":
        _apply_and_log(log, stk, answer, source="query")  # the gateway's failure is trustworthy
        detail = CALLBACK_NOT_CONFIRMED.format(status="failed", why=answer.plain_message)
        return _log_outcome(log, CallbackOutcome.UNCONFIRMED, detail, result=claimed, sides=sides)

    confirmed_amount = answer.amount if answer.amount is not None else stk.amount
    differences = _disagreements(stk, claimed, answer, confirmed_amount)
    sides["disagreements"] = differences
    confirmed = StkResult(
        status="success",
        checkout_request_id=stk.checkout_request_id,
        external_reference=claimed.external_reference,
        merchant_request_id=claimed.merchant_request_id,
        result_code=answer.result_code or "0",
        result_desc=answer.result_desc or claimed.result_desc,
        receipt=answer.receipt or claimed.receipt,
        amount=confirmed_amount,
        phone=stk.phone,
        paid_at=claimed.paid_at or answer.paid_at,
        raw=claimed.raw,
        gateway_reference=stk.gateway_reference or None,
    )
    disagreement = DISAGREEMENT.format(details="; ".join(differences)) if differences else ""
    outcome = _apply_and_log(log, stk, confirmed, source="callback", disagreement=disagreement)
    log.confirmation = _json_safe(sides)
    log.save(update_fields=["confirmation"])
    return outcome


def _disagreements(stk: StkRequest, claimed: StkResult, answer: StkResult, confirmed_amount) -> list[str]:
    out = []
    if answer.amount is not None and answer.amount != stk.amount:
        out.append(f"the gateway confirmed KES {answer.amount} but the prompt asked for KES {stk.amount}")
    if claimed.amount is not None and claimed.amount != confirmed_amount:
        out.append(f"the callback says KES {claimed.amount}, the gateway confirmed KES {confirmed_amount}")
    if claimed.receipt and answer.receipt and claimed.receipt.upper() != answer.receipt.upper():
        out.append(f"the callback says receipt {claimed.receipt}, the gateway says {answer.receipt}")
    if claimed.phone and len(claimed.phone) == 12 and claimed.phone != stk.phone:
        out.append(f"the callback says phone {claimed.phone}, the prompt went to {stk.phone}")
    return out


def _figures(result: StkResult) -> dict:
    return {
        "status": result.status,
        "result_code": result.result_code,
        "amount": str(result.amount) if result.amount is not None else None,
        "receipt": result.receipt,
        "phone": result.phone,
        "description": clean_text(result.result_desc),
    }


def _still_confirming(log: CallbackLog, claimed: StkResult, why: str, *, now, sides=None) -> str:
    """Try again later with growing gaps; after STK_EXPIRE_AFTER give up (nothing was paid)."""
    if log.received_at <= now - timedelta(seconds=settings.STK_EXPIRE_AFTER):
        detail = CALLBACK_NEVER_CONFIRMED.format(minutes=settings.STK_EXPIRE_AFTER // 60)
        return _log_outcome(log, CallbackOutcome.UNCONFIRMED, detail, result=claimed, sides=sides)
    gap = min(30 * 2 ** max(log.attempts - 1, 0), CALLBACK_MAX_BACKOFF)
    return _log_outcome(
        log,
        CallbackOutcome.CONFIRMING,
        CALLBACK_CONFIRMING.format(why=clean_text(why, 200)),
        result=claimed,
        sides=sides,
        next_attempt_at=now + timedelta(seconds=gap),
    )


def _log_outcome(
    log: CallbackLog,
    outcome: str,
    detail: str,
    *,
    result: StkResult | None = None,
    stk=None,
    sides: dict | None = None,
    next_attempt_at=None,
) -> str:
    log.outcome = outcome
    log.detail = clean_text(detail, 2000)
    log.processed_at = timezone.now()
    log.next_attempt_at = next_attempt_at
    fields = ["outcome", "detail", "processed_at", "next_attempt_at"]
    if result is not None:
        log.checkout_request_id = clean_text(result.checkout_request_id, 64)
        log.receipt = clean_text(result.receipt, 20)
        log.amount = result.amount
        fields += ["checkout_request_id", "receipt", "amount"]
        if stk is not None:
            log.stk_request = stk
            fields.append("stk_request")
    if sides is not None:
        log.confirmation = _json_safe(sides)
        fields.append("confirmation")
    log.save(update_fields=fields)
    return outcome


def callback_reprocess(*, log: CallbackLog, actor=None) -> str:
    """Apply a stored callback again (after a fix, or an order created late). Safe to repeat.

    A callback that failed authentication is refused: it can never be applied by any path.
    """
    if not log.authenticated:
        audit_record(
            actor=actor,
            action=AuditAction.CALLBACK_REPROCESS_REFUSED,
            obj=log,
            after={"outcome": log.outcome},
        )
        return log.outcome
    CallbackLog.objects.filter(pk=log.pk).update(attempts=F("attempts") + 1)
    log.refresh_from_db()
    outcome = callback_process(log=log)
    audit_record(actor=actor, action=AuditAction.CALLBACK_REPROCESS, obj=log, after={"outcome": outcome})
    return outcome
