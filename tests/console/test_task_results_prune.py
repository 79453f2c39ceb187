"""Task results are trimmed by a scheduled task, not by django-q2 on every task (save_limit 0)."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from django_q.models import Schedule, Task

from console.schedules import schedules_setup
from console.tasks import task_results_prune

pytestmark = pytest.mark.django_db


def _task(n, stopped, *, success=True):
    return Task.objects.create(
        id=f"t{n}",
        name=f"t{n}",
        func="ledger.tasks.stk_chase",
        started=stopped,
        stopped=stopped,
        success=success,
    )


def test_queue_keeps_results_and_prunes_on_a_schedule():
    assert settings.Q_CLUSTER["save_limit"] == 0  # django-q2's per-task pruning stays off
    schedules_setup()
    assert Schedule.objects.filter(func="console.tasks.task_results_prune", minutes=1).count() == 1


def test_prune_keeps_the_newest_and_drops_the_old(settings):
    settings.Q_RESULTS_KEEP = 3
    settings.Q_RESULTS_KEEP_HOURS = 24
    now = timezone.now()
    for n in range(6):
        _task(n, now - timedelta(minutes=n))
    old_failure = _task("f", now - timedelta(days=30), success=False)
    assert task_results_prune(now=now) == 3
    assert set(Task.objects.values_list("id", flat=True)) == {"t0", "t1", "t2", old_failure.id}
    assert task_results_prune(now=now) == 0  # idempotent


def test_prune_drops_results_past_the_age_limit(settings):
    settings.Q_RESULTS_KEEP = 100
    settings.Q_RESULTS_KEEP_HOURS = 24
    now = timezone.now()
    _task("new", now - timedelta(hours=23))
    _task("old", now - timedelta(hours=25))
    assert task_results_prune(now=now) == 1
    assert list(Task.objects.values_list("id", flat=True)) == ["tnew"]


def test_prune_in_batches(settings, monkeypatch):
    monkeypatch.setattr("console.tasks.PRUNE_BATCH", 2)
    settings.Q_RESULTS_KEEP = 1
    now = timezone.now()
    for n in range(5):
        _task(n, now - timedelta(seconds=n))
    assert task_results_prune(now=now) == 4
    assert list(Task.objects.values_list("id", flat=True)) == ["t0"]
