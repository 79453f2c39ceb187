"""Inbound callbacks: authenticate, store verbatim, then hand over to the service that applies them.

Storing comes first and commits on its own, so a body that later fails to parse or apply is
never lost: it waits in the callback inbox with its outcome.
"""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest

from ledger.models import CallbackLog, CallbackOutcome

# Headers worth keeping for an investigation; cookies and auth never are.
_KEPT_HEADERS = ("Content-Type", "Content-Length", "User-Agent", "X-Forwarded-For", "X-Real-Ip", "Host")


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address. X-Forwarded-For is trusted only behind a proxy we configured."""
    if getattr(settings, "TRUST_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR")


def token_is_valid(token: str) -> bool:
    """Constant-time comparison against CALLBACK_TOKEN."""
    expected = settings.CALLBACK_TOKEN
    return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())


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


def callback_store(
    request: HttpRequest,
    *,
    source: str,
    outcome: str = CallbackOutcome.RECEIVED,
    detail: str = "",
) -> CallbackLog:
    """Store one inbound request verbatim (headers kept, body as text). Commits immediately."""
    headers = {h: request.headers[h] for h in _KEPT_HEADERS if h in request.headers}
    return CallbackLog.objects.create(
        source=source,
        remote_ip=client_ip(request),
        path=request.path[:255],
        headers=headers,
        # PostgreSQL text cannot hold NUL: keep everything else verbatim.
        body=request.body.decode("utf-8", errors="replace").replace("\x00", "\ufffd"),
        outcome=outcome,
        detail=detail,
    )
