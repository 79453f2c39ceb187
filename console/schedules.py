"""The django-q2 schedules Tillbook runs. `manage.py setup_schedules` applies this list.

Each app adds its own line here; a schedule is identified by name, so re-running never
duplicates one.
"""

from django.db import transaction

# (name, dotted task function, every N minutes)
SCHEDULES: list[tuple[str, str, int]] = [
    ("Chase unanswered STK prompts", "ledger.tasks.stk_chase", 1),
    ("Confirm and apply stored callbacks", "ledger.tasks.callbacks_sweep", 1),
    ("Match till claims to receipts", "reconciliation.tasks.reconcile", 1),
    ("Trim old task results", "console.tasks.task_results_prune", 1),
]


@transaction.atomic
def schedules_setup() -> list[str]:
    """Create or update each schedule by name (idempotent); remove none the user added."""
    from django_q.models import Schedule

    names = []
    for name, func, minutes in SCHEDULES:
        Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1},
        )
        names.append(name)
    return names
