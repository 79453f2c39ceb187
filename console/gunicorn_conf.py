"""gunicorn settings for console.processes.WEB (``--config python:console.gunicorn_conf``).

Every value comes from the environment, with production defaults:

* ``PORT`` (8000) and ``BIND_HOST`` (0.0.0.0): where to listen.
* ``WEB_CONCURRENCY`` (2): sync worker processes. Each holds one persistent database connection
  (CONN_MAX_AGE), so PostgreSQL's max_connections must cover servers x workers + qcluster workers.
* ``WEB_TIMEOUT`` (30 s): kept above GATEWAY_REQUEST_BUDGET (25 s), the longest a request waits
  on M-Pesa.
"""

import os

# Every interface by default: a container's port is published by its engine; BIND_HOST narrows it.
bind = f"{os.environ.get('BIND_HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 20
# Recycle a worker now and then (with jitter, so two never restart together): bounds any slow leak.
max_requests = 20000
max_requests_jitter = 2000
# Behind a proxy that keeps connections open; sync workers answer one request at a time anyway.
keepalive = 5
# No gunicorn access log: callback paths carry the token, and gunicorn's logger is not the
# console's redacting one (console/logging.py). Errors go to stderr.
accesslog = None
errorlog = "-"
# gunicorn's control socket (gunicornc) lives at ~/.gunicorn/gunicorn.ctl: two servers run by one
# user on one host would share it. Nothing here uses it; signals (TERM, HUP) manage the server.
control_socket_disable = True
