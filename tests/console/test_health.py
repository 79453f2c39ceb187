"""Health endpoints for a load balancer: no login, no HTTPS redirect, 503 + Retry-After when not ready."""

import datetime as dt
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client
from django.utils import timezone
from django_q.models import Schedule, Task

from console import health

DOWN = OperationalError(
    'connection to server at "db.internal" (10.0.0.5), port 5432 failed: password=hunter2'
)


def _task(stopped):
    return Task.objects.create(
        id=f"t{stopped.timestamp()}",
        name="t",
        func="ledger.tasks.stk_chase",
        started=stopped,
        stopped=stopped,
        success=True,
    )


def test_healthz_is_ok_without_login_or_database(client):
    with mock.patch.object(health.connection, "cursor", side_effect=DOWN):
        response = client.get("/healthz")
    assert response.status_code == 200 and response.content == b"ok"
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_ok_when_database_cache_and_worker_are(client):
    Schedule.objects.create(
        name="s", func="ledger.tasks.stk_chase", schedule_type=Schedule.MINUTES, minutes=1
    )
    _task(timezone.now() - dt.timedelta(seconds=30))
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "worker": "ok"},
        "failed": [],
    }


@pytest.mark.django_db
def test_readyz_without_schedules_does_not_wait_for_a_worker(client):
    assert client.get("/readyz").json()["checks"]["worker"] == "ok"


@pytest.mark.django_db
def test_readyz_names_a_silent_worker(client):
    Schedule.objects.create(
        name="s", func="ledger.tasks.stk_chase", schedule_type=Schedule.MINUTES, minutes=1
    )
    _task(timezone.now() - dt.timedelta(minutes=20))
    response = client.get("/readyz")
    assert response.status_code == 503 and response["Retry-After"]
    assert response.json()["failed"] == ["worker"]
    assert response.json()["checks"]["worker"] == "silent"


@pytest.mark.django_db
def test_readyz_database_down_is_503_with_retry_after_and_no_secret(client):
    with mock.patch.object(health.connection, "cursor", side_effect=DOWN):
        response = client.get("/readyz")
    assert response.status_code == 503 and int(response["Retry-After"]) > 0
    body = response.json()
    assert body["failed"] == ["database", "worker"]
    assert body["checks"] == {"database": "error", "cache": "ok", "worker": "unknown"}
    assert "hunter2" not in response.content.decode() and "10.0.0.5" not in response.content.decode()


@pytest.mark.django_db
def test_readyz_cache_down_is_named(client):
    with mock.patch.object(health.cache, "set", side_effect=ConnectionError("redis down")):
        response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["failed"] == ["cache"]


@pytest.mark.django_db
def test_health_endpoints_are_not_redirected_to_https(settings):
    settings.SECURE_SSL_REDIRECT = True
    plain = Client()
    assert plain.get("/healthz").status_code == 200
    assert plain.get("/readyz").status_code == 200
    assert plain.get("/").status_code == 301  # everything else still goes to HTTPS


@pytest.mark.django_db
def test_database_down_in_a_middleware_is_503_with_retry_after(superuser):
    # The session's user lookup runs outside any view: handler500 answers 503, not 500.
    client = Client(raise_request_exception=False)
    client.force_login(superuser)
    with mock.patch("django.contrib.auth.get_user", side_effect=DOWN):
        response = client.get("/admin/")
    assert response.status_code == 503 and response["Retry-After"]
    assert "try again" in response.content.decode()
