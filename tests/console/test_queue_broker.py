"""console.kernel.queue.OrmBroker: django-q2's ORM broker with fewer round trips.

Tasks go in with one INSERT, come out in sets that two clusters never share (PostgreSQL:
``FOR UPDATE SKIP LOCKED``), stay leased for Q_CLUSTER["retry"] seconds, and an ack deletes one.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage
from django_q.tasks import async_task

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
