"""django-q2's ORM broker with fewer database round trips (Q_CLUSTER["broker_class"]).

The stock broker closes stale connections on every call (each enqueue, each ack), which with
CONN_HEALTH_CHECKS costs a ``SELECT 1`` each time, and it locks tasks one UPDATE (one commit) at a
time. Here:

* ``enqueue`` is one INSERT. Inside a transaction (the callback edge) it commits with the row
  that needs it; in autocommit it is its own commit.
* ``dequeue`` (the cluster's pusher loop) still drops a stale connection first, so a worker
  outlives a database restart, then on PostgreSQL takes up to ``bulk`` ready tasks in one
  statement: ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``. Two clusters
  never take the same task, and neither waits on the other's locks. SQLite keeps the stock path
  (one writer at a time anyway).
* ``acknowledge`` (and ``delete``) is one DELETE statement; the monitor has just checked the
  connection when it saved the result.

The task lease (lock = now + retry) and every other behaviour are django-q2's own.

``hint()`` queues a task that only hurries work a schedule does anyway (the matcher run after new
receipts: the every-minute run looks at everything that changed since its last run). On
PostgreSQL, outside a transaction, its INSERT commits without waiting for the WAL flush
(``SET LOCAL synchronous_commit TO OFF``, that one statement's transaction only): PostgreSQL
writes it within 3 × ``wal_writer_delay`` (0.6 s). A database crash in that window can lose the
hint, never corrupt anything, and the schedule does the work within a minute; the commit no
longer waits for the disk, which is most of an enqueue's time. Every other task (the callback
edge's, imports, exports) commits as usual: their loss would be noticed.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from time import sleep

from django import db
from django.utils import timezone
from django_q import tasks
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ

_PUT = "INSERT INTO django_q_ormq (key, payload, lock) VALUES (%s, %s, %s) RETURNING id"
# One round trip, one implicit transaction: the setting lasts for this INSERT only.
_PUT_UNFLUSHED = "SET LOCAL synchronous_commit TO OFF; " + _PUT
_TAKE = """
UPDATE django_q_ormq SET lock = %s
WHERE id IN (
    SELECT id FROM django_q_ormq
    WHERE key = %s AND lock < %s
    ORDER BY id
    LIMIT %s
    FOR UPDATE SKIP LOCKED
)
RETURNING id, payload
"""


class OrmBroker(ORM):
    @staticmethod
    def get_connection(list_key: str | None = None):
        return OrmQ.objects.using(Conf.ORM)

    def enqueue(self, task):
        return self._put(_PUT, task)

    def _put(self, sql, task):
        key = self.list_key or Conf.CLUSTER_NAME
        # The one INSERT without the ORM's model machinery: a quarter of an enqueue's time.
        connection = db.connections[Conf.ORM]
        now = connection.ops.adapt_datetimefield_value(timezone.now())  # as the ORM stores it
        with connection.cursor() as cursor:
            cursor.execute(sql, [key, task, now])
            return cursor.fetchone()[0]

    def dequeue(self):
        connection = db.connections[Conf.ORM]
        if connection.get_autocommit():
            db.close_old_connections()
        if connection.vendor != "postgresql":
            return super().dequeue()
        now = timezone.now()
        with connection.cursor() as cursor:
            cursor.execute(_TAKE, [now + timedelta(seconds=Conf.RETRY), self.list_key, now, Conf.BULK])
            taken = cursor.fetchall()
        if taken:
            return sorted(taken)
        sleep(Conf.POLL)  # empty queue: spare the CPU
        return None

    def acknowledge(self, task_id):
        # One statement in autocommit (QuerySet.delete wraps even a fast delete in a transaction:
        # a second round trip for its COMMIT).
        with db.connections[Conf.ORM].cursor() as cursor:
            cursor.execute("DELETE FROM django_q_ormq WHERE id = %s", [task_id])

    def delete(self, task_id):
        self.acknowledge(task_id)


class HintBroker(OrmBroker):
    """OrmBroker whose enqueue, in autocommit on PostgreSQL, does not wait for the WAL flush."""

    def enqueue(self, task):
        connection = db.connections[Conf.ORM]
        if connection.vendor != "postgresql" or not connection.get_autocommit():
            return self._put(_PUT, task)  # inside a transaction: it commits with that, as usual
        return self._put(_PUT_UNFLUSHED, task)


@functools.cache
def broker(*, hint: bool = False):
    """This process's broker for async_task(broker=…): get_broker() builds a new one (and a
    queryset) on every call, ~3% of a callback request. ``hint``: the HintBroker (see above) when
    Q_CLUSTER uses OrmBroker; other brokers are used as they are."""
    is_orm = f"{OrmBroker.__module__}.{OrmBroker.__qualname__}" == Conf.BROKER_CLASS
    return HintBroker(list_key=Conf.CLUSTER_NAME) if hint and is_orm else get_broker()


def hint(func: str, **kwargs) -> str:
    """Queue ``func`` as a hint (see above): for tasks a schedule repeats, never for one whose
    loss would go unnoticed."""
    return tasks.async_task(func, broker=broker(hint=True), **kwargs)
