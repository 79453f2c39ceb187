"""Inbound callbacks: authenticate, read a bounded body, store, then hand over to the services.

Storing comes first and commits on its own, so a body that later fails to parse or apply is
never lost: it waits in the callback inbox with its outcome. A request that fails its token or
source-IP check is kept only as a short excerpt with its size (it can never be applied), and such
requests are rate-limited per client IP so strangers cannot fill the database.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_ratelimit.core import is_ratelimited

from console.kernel.plausible import clean_text
from console.kernel.redact import redact_text, redact_text_strict
from console.kernel.rows import row_insert
from ledger.models import CallbackLog, CallbackOutcome
from ledger.services import callback_queue

# Headers worth keeping for an investigation; cookies and auth never are.
_KEPT_HEADERS = ("Content-Type", "Content-Length", "User-Agent", "X-Forwarded-For", "X-Real-Ip", "Host")
_READ_CHUNK = 64 * 1024
SWEEP_AFTER = timedelta(minutes=2)  # a stored callback nothing processed by then is swept


@dataclass(frozen=True)
class InboundBody:
    """What was read of a request body: at most CALLBACK_MAX_BODY_BYTES, and its full size."""

    data: bytes
    size: int
    too_large: bool


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address. X-Forwarded-For is trusted only behind a proxy we configured."""
    if getattr(settings, "TRUST_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR")


def _same(token: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())


def previous_token_deadline():
    """STK_CALLBACK_TOKEN_PREVIOUS_UNTIL as a datetime; None when empty or unreadable (a typo such as
    month 13 must refuse the old token, not answer 500)."""
    try:
        return parse_datetime(getattr(settings, "STK_CALLBACK_TOKEN_PREVIOUS_UNTIL", "") or "")
    except ValueError:
        return None


def stk_token_is_valid(token: str) -> bool:
    """STK_CALLBACK_TOKEN, or the previous one until STK_CALLBACK_TOKEN_PREVIOUS_UNTIL (rotation)."""
    if _same(token, settings.STK_CALLBACK_TOKEN):
        return True
    previous = getattr(settings, "STK_CALLBACK_TOKEN_PREVIOUS", "")
    until = previous_token_deadline()
    if not previous or until is None:
        return False
    if timezone.is_naive(until):
        until = timezone.make_aware(until)
    return timezone.now() < until and _same(token, previous)


def c2b_token_is_valid(token: str) -> bool:
    """C2B_CALLBACK_TOKEN (registered once with Safaricom; never the STK token)."""
    return _same(token, settings.C2B_CALLBACK_TOKEN)


def ip_is_allowed(ip: str | None) -> bool:
    """An empty CALLBACK_ALLOWED_IPS allows every address; otherwise IPs or CIDR ranges."""
    allowed = settings.CALLBACK_ALLOWED_IPS
    if not allowed:
        return True
    if not ip:
        return False
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(net, strict=False) for net in allowed)


def rejected_rate_limited(request: HttpRequest) -> bool:
    """True once a client IP has sent more than CALLBACK_REJECTED_RATE unauthenticated requests."""
    ip = client_ip(request) or "unknown"
    return is_ratelimited(
        request,
        group="callbacks:rejected",
        key=lambda g, r: ip,
        rate=lambda g, r: settings.CALLBACK_REJECTED_RATE,
        increment=True,
    )


def read_body(request: HttpRequest) -> InboundBody:
    """Read at most CALLBACK_MAX_BODY_BYTES of the body (never the whole of a huge one into memory).

    The rest is read and dropped only to learn its size; Content-Length is not trusted for that.
    """
    limit = settings.CALLBACK_MAX_BODY_BYTES
    kept = request.read(limit + 1)
    size = len(kept)
    if size > limit:
        while chunk := request.read(_READ_CHUNK):
            size += len(chunk)
        return InboundBody(data=kept[:limit], size=size, too_large=True)
    return InboundBody(data=kept, size=size, too_large=False)


TOO_MANY = {"ResultCode": 1, "ResultDesc": "Too many requests"}
TOO_LARGE = "Body of {size} bytes is over the {limit}-byte limit"
IP_NOT_ALLOWED = "Source IP {ip} is not allowed"


def callback_refuse(request: HttpRequest, *, source: str, detail: str, status: int, answer: dict):
    """A request that failed its token or IP check: keep an excerpt (rate-limited per client IP,
    429 past CALLBACK_REJECTED_RATE, nothing stored), never apply it; answer ``status``."""
    if rejected_rate_limited(request):
        return JsonResponse(TOO_MANY, status=429)
    callback_store(
        request,
        source=source,
        body=read_body(request),
        outcome=CallbackOutcome.REJECTED,
        detail=detail,
        authenticated=False,
    )
    return JsonResponse(answer, status=status)


def callback_store(
    request: HttpRequest,
    *,
    source: str,
    body: InboundBody,
    outcome: str = CallbackOutcome.RECEIVED,
    detail: str = "",
    authenticated: bool = True,
) -> CallbackLog:
    """Store one inbound request (commits at once). The path's token segment is always redacted.

    An authenticated body within the size limit is kept verbatim (NUL shown as U+FFFD, since
    PostgreSQL text cannot hold it); anything else keeps only CALLBACK_EXCERPT_BYTES and its size,
    with configured secrets redacted (it is never parsed again, so nothing depends on it).
    """
    headers = {
        h: redact_text(clean_text(request.headers[h], 200)) for h in _KEPT_HEADERS if h in request.headers
    }
    excerpt_only = body.too_large or not authenticated
    data = body.data[: settings.CALLBACK_EXCERPT_BYTES] if excerpt_only else body.data
    text = data.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    if excerpt_only:
        text = redact_text(text)
    # row_insert: save()'s INSERT without the ORM's machinery, ~0.4 ms of a callback request.
    return row_insert(
        CallbackLog(
            source=source,
            remote_ip=_valid_ip(client_ip(request)),
            # Strict: even a wrong or truncated token (a near miss of ours) is never stored.
            path=redact_text_strict(clean_text(request.path, 255)),
            headers=headers,
            body=text,
            body_size=body.size,
            body_truncated=excerpt_only and body.size > len(data),
            authenticated=authenticated,
            outcome=outcome,
            detail=detail,
            # The queued task takes it at once; the sweeper only after the lease, if nothing did.
            next_attempt_at=timezone.now() + SWEEP_AFTER if outcome == CallbackOutcome.RECEIVED else None,
        )
    )


def callback_accept(request: HttpRequest, *, source: str, body: InboundBody) -> CallbackLog:
    """Store an authenticated, well-formed gateway callback and queue it: one insert and one
    enqueue in one transaction, so one commit. The worker never sees the task before the row,
    and a failed enqueue stores nothing (the request fails; see callback_queue)."""
    with transaction.atomic():
        log = callback_store(request, source=source, body=body)
        callback_queue(log=log)
    return log


def _valid_ip(ip: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        return None
