"""console/gunicorn_conf.py (console.processes.WEB's --config) reads its values from the
environment, and by default a worker outlives the longest gateway wait of a request."""

import importlib

import pytest
from django.conf import settings

from console import gunicorn_conf

VARIABLES = ("PORT", "BIND_HOST", "WEB_CONCURRENCY", "WEB_TIMEOUT")


@pytest.fixture
def conf(monkeypatch):
    """Reload the module under the test's environment; reload it again after, as it was."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)

    def load():
        return importlib.reload(gunicorn_conf)

    yield load
    monkeypatch.undo()
    importlib.reload(gunicorn_conf)


def test_values_come_from_the_environment(conf, monkeypatch):
    monkeypatch.setenv("PORT", "8101")
    monkeypatch.setenv("BIND_HOST", "127.0.0.1")
    monkeypatch.setenv("WEB_CONCURRENCY", "5")
    monkeypatch.setenv("WEB_TIMEOUT", "45")
    loaded = conf()
    assert loaded.bind == "127.0.0.1:8101"
    assert loaded.workers == 5
    assert loaded.timeout == 45


def test_defaults(conf):
    loaded = conf()
    assert loaded.bind == "0.0.0.0:8000"  # the port the Dockerfile exposes and compose publishes
    assert loaded.workers == 2
    assert loaded.worker_class == "sync"
    assert loaded.accesslog is None  # callback paths carry tokens; gunicorn's log would not redact them


def test_default_timeout_is_above_the_gateway_budget(conf):
    loaded = conf()
    assert loaded.timeout > settings.GATEWAY_REQUEST_BUDGET
    assert loaded.graceful_timeout < loaded.timeout
