"""The database being unreachable is an outage, not a bug: answer 503 (try again), not 500.

A view that raises ``django.db.OperationalError`` or ``InterfaceError`` (connection refused,
server gone, connection closed) gets a 503 with ``Retry-After``: JSON for ``/api/`` (the
storefront and the gateways; a gateway retries a callback it could not deliver, which is what
we want when its body could not be stored), a short plain page for staff. It is logged once,
with the traceback, and Django's own "Service Unavailable" line is not added on top.

The middleware only sees exceptions raised by views; one raised by another middleware (the
session or user lookup) reaches ``handler500`` (console.views.server_error), which answers the
same 503 when the cause is the database.

The page is plain HTML on purpose: templates and context processors may query the database.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

UNAVAILABLE = "The service is briefly unavailable; try again."
UNAVAILABLE_LOG = "Database unavailable while serving %s %s: answered 503"
UNAVAILABLE_PAGE = (
    "<!doctype html><html lang=en><head><meta charset=utf-8><title>Briefly unavailable</title></head>"
    "<body><h1>Briefly unavailable</h1><p>{message} Nothing you were doing was lost; reload the page "
    "in a minute.</p></body></html>"
)
RETRY_AFTER_SECONDS = 30
API_PREFIX = "/api/"


class DatabaseUnavailableMiddleware:
    """Turn an unreachable database into a 503. Keep it last in MIDDLEWARE (it sees view errors)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.error(UNAVAILABLE_LOG, request.method, request.path, exc_info=exception)
        response = unavailable_response(request)
        # Logged above with the cause; django.request would log the 503 a second time.
        response._has_been_logged = True
        return response


def unavailable_response(request):
    """The 503 for an unreachable database: JSON on /api/, a plain page elsewhere, Retry-After."""
    if request.path.startswith(API_PREFIX):
        response = JsonResponse({"error": UNAVAILABLE}, status=503)
    else:
        response = HttpResponse(UNAVAILABLE_PAGE.format(message=UNAVAILABLE), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


LAST_ACTIVITY_KEY = "_last_activity"


class IdleSessionMiddleware:
    """Staff sessions end after SESSION_COOKIE_AGE of idle time. Renewing the session is a write,
    so it is renewed only when its last-activity stamp is STAFF_IDLE_RENEW_SECONDS old or more:
    the session then ends between that many seconds before the idle time and the idle time itself
    (never later). Place it after SessionMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if session is not None and session.session_key is not None:
            last = session.get(LAST_ACTIVITY_KEY)
            now = int(time.time())
            # session_key is None again when the cookie named no live session: nothing to renew.
            stale = not isinstance(last, int) or now - last >= settings.STAFF_IDLE_RENEW_SECONDS
            if session.session_key is not None and stale:
                session[LAST_ACTIVITY_KEY] = now  # modified: SessionMiddleware saves it, with a new expiry
        return self.get_response(request)
