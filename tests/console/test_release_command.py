"""`manage.py release` (console.processes.RELEASE) prepares a database and can run on every
deploy: a second run changes nothing, every schedule and role group exists once."""

from io import StringIO

from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django_q.models import Schedule

from console.roles import ROLE_PERMISSIONS
from console.schedules import SCHEDULES


def release() -> str:
    out = StringIO()
    call_command("release", verbosity=0, stdout=out)
    return out.getvalue()


def state():
    return (
        sorted(Schedule.objects.values_list("name", "func", "minutes", "repeats")),
        sorted(
            (g.name, sorted(g.permissions.values_list("codename", flat=True))) for g in Group.objects.all()
        ),
    )


def test_release_prepares_the_database_and_is_idempotent(db):
    assert "release: database ready" in release()
    first = state()
    assert "release: database ready" in release()
    assert state() == first

    names = [name for name, _, _ in SCHEDULES]
    assert sorted(Schedule.objects.filter(name__in=names).values_list("name", flat=True)) == sorted(names)
    assert Group.objects.filter(name__in=ROLE_PERMISSIONS).count() == len(ROLE_PERMISSIONS)
    for role in ROLE_PERMISSIONS:
        assert Group.objects.get(name=role).permissions.count() == len(ROLE_PERMISSIONS[role])
    # Nothing left to migrate: the release ran every migration there is.
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []


def test_release_keeps_a_schedule_the_user_added(db):
    Schedule.objects.create(
        name="Nightly export", func="ledger.tasks.stk_chase", schedule_type=Schedule.DAILY
    )
    release()
    release()
    assert Schedule.objects.filter(name="Nightly export").count() == 1
