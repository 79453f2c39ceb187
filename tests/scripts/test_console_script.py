"""scripts/console.sh: the callback address follows PORT, and Ctrl-C stops the web server and the
worker (every process they started) within seconds."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "console.sh"
# Settings the test process carries that the console must not inherit (the test command runs
# the suite with production-like DEBUG=false, a test SECRET_KEY and static files settings; the
# console is the laptop default: DEBUG on, its own database).
NOT_INHERITED = (
    "DJANGO_SETTINGS_MODULE",
    "Q_SYNC",
    "PUBLIC_BASE_URL",
    "PORT",
    "DATABASE_URL",
    "CACHE_URL",
    "DEBUG",
    "SECRET_KEY",
    "SECURE_SSL_REDIRECT",
    "STATICFILES_BACKEND",
)


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env.update(TILLBOOK_VENV=sys.prefix, **extra)  # the suite's virtualenv: nothing is installed
    return env


def _dry_run(**extra):
    out = subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=ROOT,
        env=_env(TILLBOOK_DRY_RUN="1", **extra),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if re.match(r"^[A-Z_]+=", line))


def test_public_base_url_follows_the_port():
    resolved = _dry_run(PORT="8101")
    assert resolved["PORT"] == "8101"
    assert resolved["PUBLIC_BASE_URL"] == "http://127.0.0.1:8101"


def test_the_default_port_is_8000_and_an_explicit_public_url_is_kept():
    assert _dry_run()["PUBLIC_BASE_URL"] == "http://127.0.0.1:8000"
    resolved = _dry_run(PORT="8101", PUBLIC_BASE_URL="https://shop.example.test")
    assert resolved["PUBLIC_BASE_URL"] == "https://shop.example.test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _marked(marker: str) -> list[int]:
    """Live processes whose environment carries ``marker`` (the script and all it started)."""
    found = []
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:  # gone, a zombie, or not ours to read
            continue
    return found


def _wait(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def test_ctrl_c_stops_the_web_server_and_the_worker(tmp_path):
    port, marker = _free_port(), f"console-test-{uuid.uuid4().hex}"
    env = _env(
        PORT=str(port),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        SECRET_KEY="console-script-test",
        MEDIA_ROOT=str(tmp_path / "media"),
        TILLBOOK_TEST_MARKER=marker,
    )
    log = (tmp_path / "console.log").open("w")
    # SIGINT at its default in the script, as in a terminal: a suite started in the background
    # (`cmd &`) inherits SIGINT ignored, and a shell cannot trap a signal ignored at its start.
    script = subprocess.Popen(
        ["bash", str(SCRIPT)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509 (no threads here)
    )
    try:
        assert _wait(lambda: _healthy(f"http://127.0.0.1:{port}/healthz"), 90), (
            tmp_path / "console.log"
        ).read_text()[-3000:]
        started = _marked(marker)
        assert len(started) >= 3, started  # the script, runserver (and its reloader), qcluster and workers

        script.send_signal(signal.SIGINT)  # what Ctrl-C sends
        script.wait(timeout=15)
        assert script.returncode == 130
        assert _wait(lambda: not _marked(marker), 15), f"still running: {_marked(marker)}"
        assert not _healthy(f"http://127.0.0.1:{port}/healthz")
        output = (tmp_path / "console.log").read_text()
        assert f"callbacks: http://127.0.0.1:{port}" in output
    finally:
        for pid in _marked(marker):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if script.poll() is None:
            script.kill()
        log.close()
