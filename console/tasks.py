"""The console's own background task: keeping django-q2's result table small.

django-q2 can prune results itself (Q_CLUSTER["save_limit"] > 0), but it does so on every task
by reading and locking every saved success: at a few hundred tasks a second that was most of the
queue's cost. Results are kept (``save_limit`` 0) and trimmed here once a minute instead.
Failures are never trimmed: a person reads them (admin: Failed tasks).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

PRUNE_BATCH = 5000


def task_results_prune(*, now=None) -> int:
    """Delete successful task results older than Q_RESULTS_KEEP_HOURS and those past the newest
    Q_RESULTS_KEEP. Returns how many were deleted. Idempotent; safe in several workers at once."""
    from django_q.models import Success

    now = now or timezone.now()
    keep = settings.Q_RESULTS_KEEP
    cutoff = now - timedelta(hours=settings.Q_RESULTS_KEEP_HOURS)
    # The newest kept result's stop time: anything stopped before it is past the count limit.
    last_kept = Success.objects.order_by("-stopped").values_list("stopped", flat=True)[keep - 1 : keep]
    boundary = max([cutoff, *last_kept])
    deleted = 0
    while True:
        ids = list(Success.objects.filter(stopped__lt=boundary).values_list("id", flat=True)[:PRUNE_BATCH])
        if not ids:
            return deleted
        deleted += Success.objects.filter(id__in=ids).delete()[0]
