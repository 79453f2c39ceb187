"""Health endpoints for a load balancer or an orchestrator: no login, no database for liveness.

* ``/healthz`` (liveness): the process answers. Always ``200 ok``, touches nothing else, so a
  database outage never gets healthy web processes restarted.
* ``/readyz`` (readiness): can this process serve? Checks the database (a query), the cache
  (a write and a read back: rate limits and gateway tokens live there) and the background
  worker (its last finished task is recent: the dashboard's "worker silent" rule). ``200`` with
  ``{"status": "ok", ...}`` or ``503`` with ``Retry-After`` and the names of what failed. The
  body never holds an error text: a driver message can name hosts, users or paths.

Both are exempt from the HTTPS redirect (settings.SECURE_REDIRECT_EXEMPT) and carry no session.
"""

from __future__ import annotations

import logging
import uuid

from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from console.middleware import RETRY_AFTER_SECONDS
from console.selectors import WORKER_SILENT_AFTER

logger = logging.getLogger(__name__)
CACHE_KEY = "tillbook:readyz"


@never_cache
@require_safe
def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        if cursor.fetchone() != (1,):
            return "unexpected answer"
    return "ok"


def check_cache() -> str:
    value = uuid.uuid4().hex
    cache.set(CACHE_KEY, value, timeout=30)
    return "ok" if cache.get(CACHE_KEY) == value else "write not read back"


def check_worker() -> str:
    """The worker is alive when a task finished within WORKER_SILENT_AFTER, or nothing is scheduled."""
    from django_q.models import Schedule, Task

    if not Schedule.objects.exists():
        return "ok"
    last = Task.objects.order_by("-stopped").values_list("stopped", flat=True).first()
    if last is None:
        return "no task has run"
    if timezone.now() - last > WORKER_SILENT_AFTER:
        return "silent"
    return "ok"


CHECKS = {"database": check_database, "cache": check_cache, "worker": check_worker}


@never_cache
@require_safe
def readyz(request):
    results = {}
    for name, check in CHECKS.items():
        if name == "worker" and results.get("database") != "ok":
            results[name] = "unknown"  # its heartbeat is in the database
            continue
        try:
            results[name] = check()
        except Exception:  # noqa: BLE001 - any failure is "not ready", never a 500
            logger.warning("Readiness check %s failed", name, exc_info=True)
            results[name] = "error"
    failed = sorted(name for name, result in results.items() if result != "ok")
    body = {"status": "ok" if not failed else "unavailable", "checks": results, "failed": failed}
    response = JsonResponse(body, status=503 if failed else 200)
    if failed:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
