"""Chasing prompts whose callback never came: ask the gateway, apply its answer, expire the rest."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from console.kernel.audit import AuditAction, audit_record
from console.kernel.exceptions import DomainError
from console.kernel.plausible import clean_text
from ledger.gateways import GatewayError, GatewayUnavailable, StkResult, get_gateway
from ledger.models import Order, OrderStatus, StkRequest, StkStatus

from .common import (
    APPLIED,
    NO_ANSWER,
    OPEN_STK_STATUSES,
    _json_safe,
    _lock,
    _order_state,
    _set_status,
    _status_query,
    is_latest_stk,
)
from .stk import stk_apply_result

CHASE_LOCK = "ledger:stk_chase"
CHASE_LEASE = timedelta(minutes=5)
MAX_BACKOFF = 600  # seconds


def _backoff(query_count: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(query_count - 1, 0), MAX_BACKOFF))


def _claim_batch(now, limit: int) -> list[int]:
    """Ids of queued prompts due for a status query, leased so no other chaser takes them."""
    due = StkRequest.objects.filter(
        status__in=OPEN_STK_STATUSES,
        created_at__lte=now - timedelta(seconds=settings.STK_CHASE_AFTER),
    ).exclude(next_query_at__gt=now)
    with transaction.atomic():
        qs = due.order_by("next_query_at", "pk")
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)
        ids = list(qs.values_list("pk", flat=True)[:limit])
        StkRequest.objects.filter(pk__in=ids).update(next_query_at=now + CHASE_LEASE)
    return ids


def stk_chase(*, now=None, limit: int = 100) -> dict[str, int]:
    """Ask the gateway about prompts queued longer than STK_CHASE_AFTER; apply answers like callbacks.

    Backs off exponentially (next_query_at); after STK_EXPIRE_AFTER a prompt still without an
    answer expires, keeping the last answer in last_query_result. A gateway that is down only
    delays the next look. Never overlaps itself (cache lock + leased rows).
    """
    counts = {"queried": 0, "applied": 0, "expired": 0, "errors": 0}
    if not cache.add(CHASE_LOCK, "1", timeout=int(CHASE_LEASE.total_seconds())):
        return counts
    try:
        now = now or timezone.now()
        for stk_id in _claim_batch(now, limit):
            outcome = stk_chase_one(stk_id=stk_id, now=now)
            counts["queried"] += 1
            if outcome in counts:
                counts[outcome] += 1
    finally:
        cache.delete(CHASE_LOCK)
    return counts


def stk_chase_one(*, stk_id: int, now=None) -> str:
    """Query one prompt and apply the answer. Returns applied / expired / errors / pending."""
    now = now or timezone.now()
    stk = StkRequest.objects.select_related("order").get(pk=stk_id)
    if stk.status not in OPEN_STK_STATUSES:
        return "pending"
    result: StkResult | None = None
    answer: dict
    if not stk.checkout_request_id and not stk.gateway_reference:
        # An unknown send has no id to ask about: it waits for a callback or a till receipt.
        answer = {"error": "No gateway id to ask about: waiting for a callback or a till receipt."}
    else:
        try:
            result = get_gateway(stk.gateway).query_status(_status_query(stk))
            answer = {
                "status": result.status,
                "result_code": result.result_code,
                "result_desc": clean_text(result.result_desc),
                "raw": _json_safe(result.raw),
            }
        except GatewayUnavailable as exc:
            answer = {"error": clean_text(exc.message), "unavailable": True}
        except GatewayError as exc:
            answer = {"error": clean_text(exc.message)}

    outcome = "errors" if "error" in answer else "pending"
    if result is not None and result.status != "pending":
        try:
            applied = stk_apply_result(stk=stk, result=result, source="query")
        except DomainError as exc:
            answer["error"] = exc.message
            outcome = "errors"
        else:
            outcome = "applied" if applied == APPLIED else "pending"

    with transaction.atomic():
        order, stk = _lock(stk.order_id, stk.pk)
        stk.query_count += 1
        stk.last_query_at = now
        stk.last_query_result = answer
        fields = ["query_count", "last_query_at", "last_query_result"]
        if stk.status in OPEN_STK_STATUSES and stk.created_at <= now - timedelta(
            seconds=settings.STK_EXPIRE_AFTER
        ):
            _expire(order, stk, now)
            outcome = "expired"
        elif stk.status in OPEN_STK_STATUSES:
            stk.next_query_at = now + _backoff(stk.query_count)
            fields.append("next_query_at")
        stk.save(update_fields=fields)
    return outcome


def _expire(order: Order, stk: StkRequest, now) -> None:
    before = _order_state(order)
    stk.status = StkStatus.EXPIRED
    stk.resolved_at = now
    stk.next_query_at = None
    stk.save(update_fields=["status", "resolved_at", "next_query_at"])
    if order.status == OrderStatus.PENDING_PAYMENT and is_latest_stk(stk):
        _set_status(
            order, OrderStatus.EXPIRED, reason=NO_ANSWER.format(minutes=settings.STK_EXPIRE_AFTER // 60)
        )
        order.save(update_fields=["status", "status_reason", "updated_at"])
    audit_record(
        actor=None, action=AuditAction.STK_EXPIRE, obj=order, before=before, after=_order_state(order)
    )
