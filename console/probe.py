"""Container health probe: ``python -m console.probe /readyz`` (or ``/healthz``).

Slim images have no curl, so the Dockerfile's HEALTHCHECK and compose.yaml's web check run this
instead: a GET to this container's own gunicorn (127.0.0.1:PORT) with Python's urllib. Exit 0 on
200, 1 on anything else (503 from /readyz, a refused connection, a timeout).

Django answers 400 to a Host header outside ALLOWED_HOSTS, so the probe sends the first
configured host (a leading "." of a subdomain pattern stripped; "localhost" for "*"). Only the
standard library is imported: no Django start-up on every probe.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 5


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a place to go: the probe never leaves this container."""

    def redirect_request(self, *args, **kwargs):
        return None


def probe_host(allowed_hosts: str | None) -> str:
    """The Host header to send: the first ALLOWED_HOSTS entry Django will accept."""
    for host in (allowed_hosts or "").split(","):
        host = host.strip()
        if host == "*":
            return "localhost"
        if host:
            return host.lstrip(".")
    return "localhost"  # settings' default list starts with 127.0.0.1 and localhost


def probe(path: str, environ=os.environ) -> tuple[bool, str]:
    """GET ``path`` from this container's web server: (healthy, what was seen)."""
    url = f"http://127.0.0.1:{environ.get('PORT', '8000')}{path}"
    request = urllib.request.Request(url, headers={"Host": probe_host(environ.get("ALLOWED_HOSTS"))})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status == 200, f"{response.status} {path}"
    except urllib.error.HTTPError as error:
        return False, f"{error.code} {path}: {error.read(300).decode(errors='replace')}"
    except (OSError, ValueError) as error:
        return False, f"{path}: {error.__class__.__name__}"


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/healthz"
    healthy, seen = probe(path)
    print(seen)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
