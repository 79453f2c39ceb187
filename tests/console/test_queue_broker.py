"""console.kernel.queue.OrmBroker: django-q2's ORM broker with fewer round trips.

Tasks go in with one INSERT, come out in sets that two clusters never share (PostgreSQL:
``FOR UPDATE SKIP LOCKED``), stay leased for Q_CLUSTER["retry"] seconds, and an ack deletes one.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage
from django_q.tasks import async_task

from console.kernel import queue
from console.kernel.queue import OrmBroker


def _enqueue(n, prefix="t"):
    for i in range(n):
        async_task("console.tasks.task_results_prune", task_name=f"{prefix}{i}", sync=False)


def _names(taken):
    return [SignedPackage.loads(payload)["name"] for _, payload in taken]


@pytest.mark.django_db
def test_the_configured_broker_is_ours():
    assert isinstance(get_broker(), OrmBroker)


@pytest.mark.django_db
def test_enqueue_is_one_insert():
    with CaptureQueriesContext(connection) as ctx:
        _enqueue(1)
    assert [q["sql"].split()[0] for q in ctx.captured_queries] == ["INSERT"]
    task = OrmQ.objects.get()
    assert task.key == Conf.CLUSTER_NAME and task.lock <= timezone.now()


@pytest.mark.django_db
def test_dequeue_takes_a_bulk_in_order_leases_it_and_ack_deletes(monkeypatch):
    monkeypatch.setattr(Conf, "BULK", 3)
    _enqueue(5)
    broker = get_broker()
    first = broker.dequeue()
    assert _names(first) == ["t0", "t1", "t2"]
    leased = OrmQ.objects.filter(pk__in=[pk for pk, _ in first])
    assert all(t.lock > timezone.now() + timedelta(seconds=Conf.RETRY - 60) for t in leased)
    assert _names(broker.dequeue()) == ["t3", "t4"]  # leased tasks are not taken again
    monkeypatch.setattr(Conf, "POLL", 0)
    assert not broker.dequeue()  # nothing ready
    broker.acknowledge(first[0][0])
    assert OrmQ.objects.count() == 4


@pytest.mark.django_db
def test_an_expired_lease_is_taken_again(monkeypatch):
    _enqueue(1)
    broker = get_broker()
    (pk, _), *_ = broker.dequeue()
    OrmQ.objects.filter(pk=pk).update(lock=timezone.now() - timedelta(seconds=1))  # its worker died
    assert [p for p, _ in broker.dequeue()] == [pk]


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_clusters_taking_at_once_never_share_a_task(monkeypatch):
    monkeypatch.setattr(Conf, "BULK", 7)
    monkeypatch.setattr(Conf, "POLL", 0)
    _enqueue(200)
    start = threading.Barrier(4)
    taken: list[list[int]] = [[] for _ in range(4)]

    def take(i):
        broker = OrmBroker()
        start.wait()
        try:
            while batch := broker.dequeue():
                taken[i].extend(pk for pk, _ in batch)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=take, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    every = [pk for ids in taken for pk in ids]
    assert len(every) == 200 and len(set(every)) == 200
    assert sum(1 for ids in taken if ids) >= 2  # they really ran side by side


# --- hints: tasks a schedule repeats, enqueued without waiting for the WAL flush ----------------


@pytest.fixture
def flushing_session():
    """The suite's PostgreSQL runs with synchronous_commit off; production's is on."""
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO on")
    yield
    with connection.cursor() as cursor:
        cursor.execute("RESET synchronous_commit")


def _show_synchronous_commit():
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_hint_in_autocommit_skips_the_flush_for_its_own_insert_only(flushing_session):
    assert _show_synchronous_commit() == "on"
    with CaptureQueriesContext(connection) as ctx:
        queue.hint("console.tasks.task_results_prune", task_name="hinted", sync=False)
    (sql,) = [q["sql"] for q in ctx.captured_queries]  # one round trip: setting and insert
    assert sql.startswith("SET LOCAL synchronous_commit TO OFF; INSERT INTO django_q_ormq")
    assert _show_synchronous_commit() == "on"  # the session's own setting is untouched
    (pk, payload), *_ = get_broker().dequeue()  # the cluster takes it like any other task
    assert SignedPackage.loads(payload)["name"] == "hinted" and OrmQ.objects.filter(pk=pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_hint_inside_a_transaction_commits_with_it_as_usual(request):
    # SET LOCAL there would make the whole transaction (a callback's row, say) skip the flush.
    if connection.vendor == "postgresql":
        request.getfixturevalue("flushing_session")
    with CaptureQueriesContext(connection) as ctx, transaction.atomic():
        queue.hint("console.tasks.task_results_prune", task_name="in-a-transaction", sync=False)
        if connection.vendor == "postgresql":
            assert _show_synchronous_commit() == "on"
    assert not any("synchronous_commit" in q["sql"] for q in ctx.captured_queries if "SHOW" not in q["sql"])
    assert OrmQ.objects.count() == 1


@pytest.mark.django_db
def test_only_schedule_repeated_work_is_hinted_and_plain_enqueue_waits_for_the_flush():
    _enqueue(1)  # async_task, as the callback edge, imports and exports queue theirs
    queue.hint("console.tasks.task_results_prune", sync=False)
    plain, hinted = OrmQ.objects.order_by("pk")
    assert plain.key == hinted.key == Conf.CLUSTER_NAME  # one queue, one cluster takes both
    assert isinstance(queue.broker(hint=True), queue.HintBroker)
    assert type(queue.broker()) is OrmBroker  # every other task keeps the usual commit
    assert queue.broker() is queue.broker()  # one per process
