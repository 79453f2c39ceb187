"""The containers' health checks: console/probe.py (web, through gunicorn's port) and
`manage.py worker_alive` (the worker: this host's django-q cluster reports in the cache)."""

import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import CommandError, call_command
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.signing import SignedPackage
from django_q.status import Stat, Status

from console import probe


# --- console/probe.py ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("allowed", "host"),
    [
        ("shop.example.co.ke,admin.example.co.ke", "shop.example.co.ke"),
        (" .example.co.ke", "example.co.ke"),  # a subdomain pattern matches the domain itself
        ("*", "localhost"),
        ("", "localhost"),
        (None, "localhost"),  # settings' default list holds localhost
    ],
)
def test_probe_sends_a_host_django_accepts(allowed, host):
    assert probe.probe_host(allowed) == host


@pytest.fixture
def server():
    """A stand-in web server on a free port: answers each path's status, records Host headers."""
    answers = {"/healthz": 200, "/readyz": 503, "/admin/": 301}
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers["Host"])
            status = answers.get(self.path, 404)
            self.send_response(status)
            if status == 301:
                self.send_header("Location", "https://shop.example.co.ke/admin/")
            body = b'{"failed": ["worker"]}' if status == 503 else b"ok"
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield {"PORT": str(httpd.server_address[1]), "ALLOWED_HOSTS": "shop.example.co.ke"}, seen
    httpd.shutdown()
    httpd.server_close()


def test_probe_is_healthy_on_200_with_the_allowed_host(server):
    environ, seen = server
    assert probe.probe("/healthz", environ) == (True, "200 /healthz")
    assert seen == ["shop.example.co.ke"]


def test_probe_is_unhealthy_on_503_and_shows_what_failed(server):
    environ, _ = server
    healthy, what = probe.probe("/readyz", environ)
    assert not healthy and what.startswith("503 /readyz") and "worker" in what


def test_probe_never_follows_a_redirect_out_of_the_container(server):
    environ, seen = server
    assert probe.probe("/admin/", environ) == (False, "301 /admin/: ok")
    assert len(seen) == 1


def test_probe_is_unhealthy_when_nothing_listens(server):
    environ, _ = server
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]  # bound, never listening: the connection is refused
        healthy, what = probe.probe("/healthz", environ | {"PORT": str(free)})
    assert not healthy and what.startswith("/healthz: ")


def test_probe_main_exit_code(server, monkeypatch, capsys):
    environ, _ = server
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert probe.main(["probe", "/healthz"]) == 0
    assert probe.main(["probe", "/readyz"]) == 1
    assert "503 /readyz" in capsys.readouterr().out


# --- manage.py worker_alive ----------------------------------------------------------------------
# The ORM broker asks the database connection for its autocommit state: these tests need `db`.
def report(status, host=None):
    """Save a cluster status the way a running qcluster's guard loop does (Stat.save)."""
    stat = Status(pid=1, cluster_id=uuid.uuid4())
    stat.status = status
    stat.host = host or socket.gethostname()
    stat.workers = [11, 12]
    get_broker().set_stat(Stat.get_key(stat.cluster_id), SignedPackage.dumps(stat, True), 3)


@pytest.mark.parametrize("status", [Conf.IDLE, Conf.WORKING])
def test_worker_alive_when_this_hosts_cluster_runs(db, status, capsys):
    report(status)
    call_command("worker_alive")
    assert f"{status}, 2 workers" in capsys.readouterr().out


def test_worker_not_alive_without_a_cluster(db):
    with pytest.raises(CommandError, match="no cluster status"):
        call_command("worker_alive")


def test_worker_not_alive_when_only_another_host_runs_one(db):
    report(Conf.IDLE, host="another-container")
    with pytest.raises(CommandError, match="no cluster status"):
        call_command("worker_alive")


@pytest.mark.parametrize("status", [Conf.STARTING, Conf.STOPPING, Conf.STOPPED])
def test_worker_not_alive_while_starting_or_stopping(db, status):
    report(status)
    with pytest.raises(CommandError, match=str(status)):
        call_command("worker_alive")
