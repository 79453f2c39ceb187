"""The production processes, named once.

``compose.yaml``, the Dockerfile, the several-processes test (tests/console/
test_processes_postgres.py) and the README's deploy section all run exactly these; a test reads
compose.yaml and checks that it names the same commands and the same health check.
"""

from __future__ import annotations

# One-shot, before the web servers and workers start (and after every upgrade): migrations, the
# cache table, the role groups and the background schedules. Idempotent.
RELEASE = ["python", "manage.py", "release"]
# The web server: gunicorn with console/gunicorn_conf.py (bind from PORT, WEB_CONCURRENCY sync
# workers, timeout above GATEWAY_REQUEST_BUDGET). Static files are served by whitenoise.
WEB = ["gunicorn", "console.wsgi", "--config", "python:console.gunicorn_conf"]
# The background worker (django-q2). Run one or more; job locks keep every task safe twice.
WORKER = ["python", "manage.py", "qcluster"]
# Readiness: database, cache and worker (console/health.py). Liveness is HEALTH_LIVE.
HEALTH_READY = "/readyz"
HEALTH_LIVE = "/healthz"
