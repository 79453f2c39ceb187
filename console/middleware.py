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
