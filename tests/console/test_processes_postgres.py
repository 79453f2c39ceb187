"""Two web servers and two workers on one PostgreSQL database lose nothing and double nothing.

The production processes, started exactly as console.processes names them (WEB: gunicorn with
console/gunicorn_conf.py, 2 sync workers each; WORKER: `manage.py qcluster`), against the test
database, with a database cache they all share. Work is driven through both servers at once:

* STK callbacks for orders waiting for payment, each posted to both servers and some several
  times more (the worker confirms each with the simulator's status query, then applies it);
* STK pushes through the storefront API: the simulator's customer answers from a worker, posting
  the callback to PUBLIC_BASE_URL like a real gateway;
* C2B confirmations of till receipts, each delivered to both servers, some again;
* WhatsApp claims quoting those receipts (some quoted twice, by two senders), verified by the
  matcher runs that every new receipt queues, by the scheduled tasks queued several times at once
  and by `manage.py reconcile` running alongside.

Then every order is paid once, every receipt stored and used once, every claim verified once (its
twin not at all), every callback in a final outcome, no task failed and the books check clean.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import time
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from django_q.models import Failure, OrmQ, Task
from django_q.tasks import async_task

from console import processes
from console.kernel.clock import NAIROBI
from ledger.books import books_check
from ledger.models import (
    CallbackLog,
    CallbackOutcome,
    CallbackSource,
    EntryKind,
    JournalEntry,
    Order,
    OrderStatus,
    StkRequest,
)
from reconciliation.models import Claim, ClaimReason, ClaimStatus, TillReceipt
from tests.ledger.factories import StkRequestFactory, daraja_callback_body, simulator_receipt
from tests.reconciliation.factories import ClaimFactory, code_for

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
ORDERS = 40  # STK orders whose callbacks we post
PUSHES = 8  # STK pushes through the API (the simulator's worker posts the callback)
RECEIPTS = 40  # C2B till receipts, each claimed once
TWINS = 5  # receipts claimed a second time by another sender (first claim stands)
PRICES = ["150", "250", "500", "750", "1500", "2500"]  # fixtures/bundles.json: one bundle each
# The schedules' tasks (console/schedules.py), queued this many times each while callbacks arrive.
SCHEDULED = {
    "reconciliation.tasks.reconcile": 6,
    "ledger.tasks.callbacks_sweep": 2,
    "ledger.tasks.stk_chase": 2,
}
START_TIMEOUT = 30  # seconds for every process to answer
SETTLE_TIMEOUT = 45  # seconds for the queue to drain and every callback to be processed
OPEN = (CallbackOutcome.RECEIVED, CallbackOutcome.CONFIRMING)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    """The test database (pytest-django's test_<name>) as DATABASE_URL for the subprocesses."""
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    host = quote(db.get("HOST") or "127.0.0.1", safe="")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{quote(db['USER'] or '', safe='')}{password}@{host}{port}/{quote(db['NAME'])}"


class Proc:
    """One subprocess in its own session (so its children are killed with it), logging to a file."""

    def __init__(self, name: str, cmd: list[str], env: dict, logdir: Path):
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def stop(self) -> None:
        # TERM to the main process only, as a supervisor sends it (django-q2's cluster can hang on
        # exit when its whole group gets TERM at once); then the whole group is killed.
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        self._signal(signal.SIGKILL)  # the whole group: workers may outlive their master
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        self._log.close()

    def _signal(self, sig) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)


class Cluster:
    """Two web servers and two workers; `env` is what each was started with."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        self.ports = [free_port(), free_port()]
        self.stk_token = secrets.token_urlsafe(32)
        self.c2b_token = secrets.token_urlsafe(32)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STK_CALLBACK_TOKEN", "PYTEST"))}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "console.settings",  # production settings, not the tests'
                "DATABASE_URL": database_url(),
                "SECRET_KEY": os.environ.get("SECRET_KEY") or "test-only-not-secret",
                "DEBUG": "false",
                "SECURE_SSL_REDIRECT": "false",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                # Shared by every process: the rate limiter counts and /readyz writes here.
                "CACHE_URL": "dbcache://tillbook_cache",
                "STATICFILES_BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage",
                "MEDIA_ROOT": str(logdir / "media"),
                "Q_SYNC": "false",  # test_settings forces it on in os.environ
                "Q_WORKERS": "2",
                "PAYMENT_GATEWAY": "simulator",
                "SIMULATOR_CALLBACK_DELAY": "0",  # the status query confirms at once
                "STK_RATE_LIMIT": "1000/m",
                "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.ports[0]}",
                "STK_CALLBACK_TOKEN": self.stk_token,
                "C2B_CALLBACK_TOKEN": self.c2b_token,
                "CALLBACK_ALLOWED_IPS": "127.0.0.1",
                "BIND_HOST": "127.0.0.1",
                "WEB_CONCURRENCY": "2",
                "LOG_LEVEL": "INFO",
                # django-q2's INFO lines ("… running.", "Processed …") tell when each cluster is up
                # and how many tasks each ran; production keeps them off (Q_LOG_LEVEL WARNING).
                "Q_LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.env = env
        self.procs: list[Proc] = []
        self.web: list[Proc] = []
        self.workers: list[Proc] = []

    def start(self) -> None:
        for i, port in enumerate(self.ports):
            self.web.append(self.spawn(f"web{i}", processes.WEB, {"PORT": str(port)}))
        for i in range(2):
            self.workers.append(self.spawn(f"worker{i}", processes.WORKER))

    def spawn(self, name: str, cmd: list[str], extra: dict | None = None) -> Proc:
        proc = Proc(name, cmd, {**self.env, **(extra or {})}, self.logdir)
        self.procs.append(proc)
        return proc

    def url(self, i: int, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[i]}{path}"

    def wait_ready(self) -> None:
        """Both servers answer /readyz (database and shared cache) and both workers are running."""

        def ready(i: int) -> bool:
            try:
                resp = requests.get(self.url(i, processes.HEALTH_READY), timeout=2)
            except requests.RequestException:
                return False
            return resp.status_code == 200 and resp.json()["status"] == "ok"

        self.wait_until(
            lambda: all(ready(i) for i in range(2)) and all(" running." in w.text() for w in self.workers),
            START_TIMEOUT,
            "the servers' /readyz and the workers' start",
        )

    def wait_until(self, condition, timeout: float, what: str, state=lambda: "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if dead := [p.name for p in self.procs if p.exited() and p in self.web + self.workers]:
                pytest.fail(f"{', '.join(dead)} exited while waiting for {what}\n{self.logs()}")
            time.sleep(0.25)
        pytest.fail(f"Timed out after {timeout} s waiting for {what} {state()}\n{self.logs()}")

    def stop(self) -> None:
        for proc in reversed(self.procs):  # workers first: the simulator's posts need a server
            proc.stop()

    def logs(self, tail: int = 4000) -> str:
        return "\n".join(
            f"----- {p.name} (exit {p.popen.poll()}) -----\n{p.text()[-tail:]}" for p in self.procs
        )


@pytest.fixture
def cluster(transactional_db, tmp_path):
    shared = {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "tillbook_cache"}
    with override_settings(CACHES={"default": shared}):  # what `manage.py release` creates
        call_command("createcachetable", verbosity=0)
    procs = Cluster(tmp_path)  # the test starts it, then writes its data while the processes boot
    try:
        yield procs
    finally:
        procs.stop()
        print(procs.logs())  # shown by pytest only when the test fails
        _wait_for_their_connections_to_close()


def _wait_for_their_connections_to_close(timeout: float = 10) -> None:
    """Killed clients' backends end on their own; the flush after the test must not wait on one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.1)


def _story(code: str) -> list:
    """The claims quoting ``code`` and their audit events, to explain a failure."""
    from console.models import AuditEvent

    found = list(
        Claim.objects.filter(code=code).values_list("pk", "status", "reason", "order_id", "updated_at")
    )
    events = AuditEvent.objects.filter(
        object_type__icontains="claim", object_id__in=[str(c[0]) for c in found]
    )
    return found + list(events.order_by("pk").values_list("object_id", "action", "at"))


def c2b_body(code: str, amount: str, paid_at: dt.datetime, n: int) -> str:
    """A Daraja C2B confirmation (tests/data/reconciliation/c2b_confirmation_masked.json's shape)."""
    return json.dumps(
        {
            "TransactionType": "Buy Goods",
            "TransID": code,
            "TransTime": paid_at.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S"),
            "TransAmount": f"{Decimal(amount):.2f}",
            "BusinessShortCode": "6944804",
            "BillRefNumber": "",
            "InvoiceNumber": "",
            "OrgAccountBalance": "25.00",
            "ThirdPartyTransID": "",
            "MSISDN": f"2547 ***** {n:03d}",
            "FirstName": "CUSTOMER",
            "MiddleName": "",
            "LastName": "",
        }
    )


def test_two_servers_and_two_workers_double_and_lose_nothing(cluster, bundles):
    assert connection.vendor == "postgresql"
    started = time.monotonic()
    cluster.start()
    by_price = {str(int(b.price)): b for b in bundles.values()}
    rng = random.Random(20260310)

    # --- the work, written while the processes start ---------------------------------------------
    stks = [StkRequestFactory(order__bundle=by_price[PRICES[i % len(PRICES)]]) for i in range(ORDERS)]
    paid_at = timezone.now() - dt.timedelta(minutes=3)
    codes = [code_for(paid_at.astimezone(NAIROBI).date()) for _ in range(RECEIPTS)]
    amounts = {code: PRICES[i % len(PRICES)] for i, code in enumerate(codes)}
    claims = {code: ClaimFactory(code=code, claimed_at=timezone.now()) for code in codes}
    twins = {
        code: ClaimFactory(code=code, claimed_at=timezone.now() + dt.timedelta(minutes=1))
        for code in codes[:TWINS]
    }

    stk_url = [cluster.url(i, f"/api/callbacks/daraja/{cluster.stk_token}/") for i in range(2)]
    c2b_url = [cluster.url(i, f"/api/callbacks/c2b/{cluster.c2b_token}/confirmation") for i in range(2)]
    posts: list[tuple[str, str]] = []
    for i, stk in enumerate(stks):
        body = json.dumps(daraja_callback_body(stk))
        posts += [(stk_url[0], body), (stk_url[1], body)] * (2 if i % 4 == 0 else 1)
    for i, code in enumerate(codes):
        body = c2b_body(code, amounts[code], paid_at, i)
        posts += [(c2b_url[0], body), (c2b_url[1], body)] + ([(c2b_url[i % 2], body)] if i % 5 == 0 else [])
    pushes = [
        (
            cluster.url(i % 2, "/api/stk-push/"),
            json.dumps({"phone_number": f"07220000{i:02d}", "bundle": slug}),
        )
        for i, slug in enumerate(rng.choices(sorted(bundles), k=PUSHES))
    ]
    jobs = [("post", url, body) for url, body in posts + pushes]
    jobs += [("queue", func, None) for func, times in SCHEDULED.items() for _ in range(times)]
    rng.shuffle(jobs)
    stk_deliveries = Counter(
        json.loads(body)["Body"]["stkCallback"]["CheckoutRequestID"]
        for url, body in posts
        if "/daraja/" in url
    )
    c2b_deliveries = Counter(json.loads(body)["TransID"] for url, body in posts if "/c2b/" in url)

    cluster.wait_ready()
    ready_at = time.monotonic()

    # --- drive both servers and both workers at once -------------------------------------------
    def run(job):
        kind, target, body = job
        if kind == "queue":  # as the scheduler does, into the ORM broker both workers read
            try:
                async_task(target, sync=False)
            finally:
                connection.close()
            return target, 0, None
        resp = requests.post(target, data=body, headers={"Content-Type": "application/json"}, timeout=(5, 30))
        return target, resp.status_code, resp.json()

    manual = cluster.spawn("reconcile", ["python", "manage.py", "reconcile"])
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(run, jobs, timeout=60))
    answers = Counter((("/".join(t.split("/")[3:5]) if "://" in t else t), code) for t, code, _ in results)
    assert all(code in (0, 200, 201) for _, code, _ in results), answers
    references = [body["reference"] for t, code, body in results if t.endswith("/stk-push/")]
    assert len(set(references)) == PUSHES

    cluster.wait_until(lambda: manual.exited(), 30, "manage.py reconcile")
    assert manual.popen.returncode == 0, manual.text()

    expected_tasks = (
        sum(stk_deliveries.values())  # each stored callback queues its own processing
        + 2 * PUSHES  # the simulated customer's callback, and its processing
        + RECEIPTS  # each new till receipt queues a matcher run for its code
        + sum(SCHEDULED.values())
    )

    def settled() -> bool:
        return (
            not OrmQ.objects.exists()
            and not CallbackLog.objects.filter(outcome__in=OPEN).exists()
            and Task.objects.count() >= expected_tasks
        )

    def state() -> str:
        open_logs = CallbackLog.objects.filter(outcome__in=OPEN).values_list("pk", "source", "outcome")
        tasks = f"{Task.objects.count()}/{expected_tasks}, failed {Failure.objects.count()}"
        return f"(queued {OrmQ.objects.count()}, open {list(open_logs)}, tasks {tasks})"

    cluster.wait_until(
        settled, SETTLE_TIMEOUT, "the queue to drain and every callback to be processed", state
    )
    settled_at = time.monotonic()

    # --- nothing failed, every task ran exactly once, on both workers --------------------------
    assert list(Failure.objects.values_list("func", "result")) == []
    assert Task.objects.count() == expected_tasks
    worker_runs = [w.text().count("Processed '") for w in cluster.workers]
    assert sum(worker_runs) == expected_tasks, worker_runs  # no task ran twice
    assert all(worker_runs), f"each worker ran tasks: {worker_runs}"
    assert not any("Failed '" in w.text() or "Traceback" in w.text() for w in cluster.workers + cluster.web)
    callback_results = Counter(
        Task.objects.filter(func="ledger.tasks.callback_process").values_list("result", flat=True)
    )
    # Every queued callback was taken by its own task (None: another worker had it; the sweeper's job).
    assert set(callback_results) <= {CallbackOutcome.APPLIED, CallbackOutcome.DUPLICATE}, callback_results

    # --- both servers served callbacks ----------------------------------------------------------
    hosts = Counter(CallbackLog.objects.values_list("headers__Host", flat=True))
    assert set(hosts) == {f"127.0.0.1:{port}" for port in cluster.ports}, hosts

    # --- every STK order paid exactly once -------------------------------------------------------
    stk_logs = CallbackLog.objects.filter(source=CallbackSource.DARAJA)
    assert stk_logs.count() == sum(stk_deliveries.values()) + PUSHES
    outcomes = defaultdict(Counter)
    for checkout, outcome in stk_logs.values_list("checkout_request_id", "outcome"):
        outcomes[checkout][outcome] += 1
    pushed = list(StkRequest.objects.filter(order__reference__in=references))
    assert len(pushed) == PUSHES
    for checkout in [s.checkout_request_id for s in stks + pushed]:
        delivered = stk_deliveries.get(checkout, 1)
        assert outcomes[checkout] == Counter(
            {CallbackOutcome.APPLIED: 1, CallbackOutcome.DUPLICATE: delivered - 1}
        ), checkout
    receipts_of = {s.order_id: simulator_receipt(s) for s in stks}
    for stk in stks + pushed:
        order = Order.objects.get(pk=stk.order_id)
        assert order.status == OrderStatus.PAID and order.amount_paid == order.price
        if order.pk in receipts_of:
            assert order.mpesa_receipt == receipts_of[order.pk]
        (entry,) = JournalEntry.objects.filter(order=order)  # one entry: the payment
        assert entry.kind == EntryKind.STK_PAYMENT and entry.receipt_code == order.mpesa_receipt
        assert sum(p.amount for p in entry.postings.all() if p.amount > 0) == order.price

    # --- every till receipt stored and booked once ----------------------------------------------
    c2b_logs = CallbackLog.objects.filter(source=CallbackSource.C2B_CONFIRMATION)
    assert c2b_logs.count() == sum(c2b_deliveries.values())
    c2b_outcomes = defaultdict(Counter)
    for code, outcome in c2b_logs.values_list("receipt", "outcome"):
        c2b_outcomes[code][outcome] += 1
    for code in codes:
        assert c2b_outcomes[code] == Counter(
            {CallbackOutcome.APPLIED: 1, CallbackOutcome.DUPLICATE: c2b_deliveries[code] - 1}
        ), code
    receipts = {r.code: r for r in TillReceipt.objects.all()}
    assert sorted(receipts) == sorted(codes)
    assert all(receipts[code].amount == Decimal(amounts[code]) for code in codes)
    till_entries = Counter(
        JournalEntry.objects.filter(kind=EntryKind.TILL_RECEIPT).values_list("receipt_code", flat=True)
    )
    assert till_entries == Counter(codes)

    # --- every claim verified once, with its own order; no receipt used twice -------------------
    for code, claim in claims.items():
        claim.refresh_from_db()
        receipt = receipts[code]
        assert claim.status == ClaimStatus.VERIFIED, (code, _story(code))
        assert claim.receipt_id == receipt.pk and receipt.order_id == claim.order_id is not None
        assert claim.order.price == receipt.amount and claim.order.status == OrderStatus.PAID
        (entry,) = JournalEntry.objects.filter(order=claim.order_id)
        assert entry.kind == EntryKind.CLAIM_VERIFIED
        assert sum(p.amount for p in entry.postings.all() if p.amount > 0) == receipt.amount
    for code, twin in twins.items():
        twin.refresh_from_db()
        assert (twin.status, twin.reason, twin.order_id) == (
            ClaimStatus.NEEDS_REVIEW,
            ClaimReason.CODE_ALREADY_USED,
            None,
        ), code
    verified = Claim.objects.filter(status=ClaimStatus.VERIFIED)
    assert verified.count() == RECEIPTS == len(set(verified.values_list("receipt_id", flat=True)))
    assert Order.objects.filter(channel="till").count() == RECEIPTS
    assert Order.objects.count() == ORDERS + PUSHES + RECEIPTS

    # --- every callback final, the books clean --------------------------------------------------
    assert Counter(CallbackLog.objects.values_list("outcome", flat=True)).keys() <= {
        CallbackOutcome.APPLIED,
        CallbackOutcome.DUPLICATE,
    }
    assert JournalEntry.objects.count() == ORDERS + PUSHES + 2 * RECEIPTS
    assert books_check() == []
    call_command("check_books", verbosity=0)  # raises CommandError (exit 1) on any problem

    print(
        f"started in {ready_at - started:.1f} s, work settled in {settled_at - ready_at:.1f} s; "
        f"tasks per worker {worker_runs}; callbacks per server {dict(hosts)}"
    )
