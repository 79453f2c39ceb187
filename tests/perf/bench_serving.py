"""The serving rows of the benchmark: callbacks through gunicorn, and the django-q2 queue.

Run by bench.py (``--only stk_callbacks_unique`` …); each row has its baseline in the same run:

  stk_callbacks_unique    Daraja STK callbacks, a different pending prompt in each body, POSTed by
                          wrk to gunicorn (2 sync workers, console.processes.WEB)  vs  a view on
                          the same server that inserts one row and returns 200 (tests/perf/bench_urls)
  stk_callbacks_repeated  one callback body POSTed again and again  vs  the same baseline
  queue_enqueue           reconcile_later in a loop outside a transaction, one commit each (what
                          a till receipt queues: a hint, console.kernel.queue)  vs  before, in the
                          same run: django-q2's stock ORM broker with CONN_MAX_AGE 0 (the issue
                          measured 96/s); also prints plain async_task's rate (a flushed commit)
  queue_drain             one qcluster (console.processes.WORKER, 1 worker) drains N reconcile
                          tasks  vs  the same task function called N times in a loop in one
                          process; then 2 workers drain them again (their rate is printed)

After the callback rows a qcluster applies every stored callback (the worker confirms each with
the simulator's status query) and the row fails unless every acknowledged body was stored once,
queued once, and paid its order exactly once, with the books clean.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PERF = ROOT / "tests" / "perf"
CALLBACK_TOKEN = "bench-stk-callback-token-0123456789"
ENQUEUE_BEFORE = 96.0  # tasks/s, the figure for async_task with CONN_MAX_AGE 0
ASIDE = "bench-aside"  # the queue key of tasks enqueued only to be timed (no cluster takes them)
WRK_SECONDS = 5
WRK_ROUNDS = 3  # baseline, unique, repeated, interleaved this many times; the median run counts
WRK_THREADS = 2
WRK_CONNECTIONS = 8


# --- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env(db_url: str, **extra) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "DJANGO_SETTINGS_MODULE": "tests.perf.bench_settings",
        "DEBUG": "false",
        "Q_SYNC": "false",
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CACHE_URL": "locmemcache://",
        "PAYMENT_GATEWAY": "simulator",
        "SIMULATOR_CALLBACK_DELAY": "0",
        "STK_CALLBACK_TOKEN": CALLBACK_TOKEN,
        "C2B_CALLBACK_TOKEN": "bench-c2b-callback-token-9876543210",
        "CALLBACK_ALLOWED_IPS": "127.0.0.0/8",
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "WARNING",
    }
    env.pop("BENCH_PROFILE", None)
    env.update(extra)
    return env


def start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    out = log.open("wb")
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(proc: subprocess.Popen, grace: float = 15) -> None:
    if proc.poll() is not None:
        return
    # TERM to the main process, as a supervisor sends it (django-q2's cluster can hang on exit
    # when every process of its group gets the signal at once); the group is killed after grace.
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def wait_http(url: str, proc: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback)
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server not ready: {log.read_text()[-3000:]}")


def wait_until(check, seconds: float, what: str, proc: subprocess.Popen, log: Path, step: float = 0.5):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited: {log.read_text()[-3000:]}")
        time.sleep(step)
    raise RuntimeError(f"timed out waiting for {what}: {log.read_text()[-3000:]}")


# --- wrk ---------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def median_run(runs: list[dict]) -> dict:
    """The run with the median request rate (its own p99 goes with it); errors summed over all."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    middle = dict(ordered[len(ordered) // 2])
    middle["non_2xx"] = sum(r["non_2xx"] for r in runs)
    middle["socket_errors"] = sum(r["socket_errors"] for r in runs)
    return middle


def wrk(url: str, script: str, args: list[str], seconds: int = WRK_SECONDS) -> dict:
    cmd = [
        "wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--latency",
        "-s", str(PERF / script), url, "--", *args,
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s|m)\b", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": rps,
        "requests": total,
        "p99_ms": round(float(p99.group(1)) * _UNITS[p99.group(2)], 1) if p99 else None,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


# --- callbacks -------------------------------------------------------------------------------


def seed_prompts(n: int) -> list[str]:
    """n pending STK orders, each with an accepted prompt; returns one Daraja callback body each."""
    from catalog.models import Bundle
    from ledger.models import Channel, Order, OrderStatus, StkRequest, StkStatus
    from tests.ledger.factories import daraja_callback_body

    bundle = Bundle.objects.order_by("id").first()
    bodies = []
    for start in range(0, n, 5000):
        size = min(5000, n - start)
        orders = Order.objects.bulk_create(
            Order(
                bundle=bundle,
                price=bundle.price,
                payer_msisdn=f"254711{(start + i) % 1000000:06d}",
                recipient_msisdn=f"254711{(start + i) % 1000000:06d}",
                channel=Channel.STK,
                gateway="simulator",
                status=OrderStatus.PENDING_PAYMENT,
            )
            for i in range(size)
        )
        prompts = StkRequest.objects.bulk_create(
            StkRequest(
                order=order,
                gateway="simulator",
                phone=order.payer_msisdn,
                amount=order.price,
                checkout_request_id=f"ws_CO_BENCH{start + i:010d}",
                merchant_request_id=f"29115-{start + i}-1",
                gateway_reference=f"ws_CO_BENCH{start + i:010d}",
                status=StkStatus.QUEUED,
            )
            for i, order in enumerate(orders)
        )
        bodies.extend(json.dumps(daraja_callback_body(p), separators=(",", ":")) for p in prompts)
    return bodies


def callbacks_check(expect_acknowledged: int, repeated_checkout: str) -> dict:
    """What the worker made of the stored callbacks: raises unless nothing was lost or doubled."""
    from django.db.models import Count
    from django_q.models import Failure, OrmQ

    from ledger.books import books_check
    from ledger.models import CallbackLog, CallbackOutcome, JournalEntry, Order, OrderStatus

    logs = CallbackLog.objects.filter(source="daraja")
    stored = logs.count()
    outcomes = dict(logs.values_list("outcome").annotate(n=Count("id")))
    paid = Order.objects.filter(status=OrderStatus.PAID).count()
    entries = JournalEntry.objects.filter(kind="stk_payment").count()
    doubled = (
        JournalEntry.objects.filter(kind="stk_payment")
        .values("receipt_code")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    repeated = logs.filter(checkout_request_id=repeated_checkout)
    problems = []
    if stored < expect_acknowledged:
        problems.append(f"lost: {expect_acknowledged} acknowledged, {stored} stored")
    if OrmQ.objects.exists() or Failure.objects.exists():
        problems.append("tasks left or failed")
    open_ = logs.filter(outcome__in=[CallbackOutcome.RECEIVED, CallbackOutcome.CONFIRMING]).count()
    if open_:
        problems.append(f"{open_} callbacks not processed")
    if doubled or entries != paid:
        problems.append(f"doubled: {entries} payment entries, {paid} paid orders, {doubled} receipts twice")
    if repeated.filter(outcome=CallbackOutcome.APPLIED).count() != 1:
        problems.append("the repeated body was not applied exactly once")
    books = books_check()
    if books:
        problems.append(f"books: {books}")
    return {"stored": stored, "outcomes": outcomes, "paid_orders": paid, "problems": problems}


def run_callbacks(db_url: str, row, prompts: int, tmp: Path) -> list[dict]:
    from django.db import connection
    from django_q.models import OrmQ

    from ledger.models import CallbackLog

    with connection.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bench_insert (id bigserial PRIMARY KEY, body text NOT NULL)")
    bodies = seed_prompts(prompts)
    unique_file, same_file = tmp / "bodies.jsonl", tmp / "same.jsonl"
    unique_file.write_text("\n".join(bodies[1:]) + "\n")
    same_file.write_text(bodies[0] + "\n")
    repeated_checkout = json.loads(bodies[0])["Body"]["stkCallback"]["CheckoutRequestID"]

    port = free_port()
    env = process_env(db_url, PORT=str(port), BIND_HOST="127.0.0.1", WEB_CONCURRENCY="2")
    from console.processes import HEALTH_LIVE, WEB, WORKER

    log = tmp / "gunicorn.log"
    web = start(WEB, env, log)
    base = f"http://127.0.0.1:{port}"
    callback_url = f"{base}/api/callbacks/daraja/{CALLBACK_TOKEN}/"
    try:
        wait_http(base + HEALTH_LIVE, web, log)
        wrk(f"{base}/bench/insert/", "same_body.lua", [str(same_file)], seconds=2)  # warm-up
        runs: dict[str, list[dict]] = {"baseline": [], "unique": [], "repeated": []}
        share = (len(bodies) - 1) // WRK_ROUNDS  # each round its own slice of the unique bodies
        for n in range(WRK_ROUNDS):  # interleaved, so a slow minute of the machine hits all three
            runs["baseline"].append(wrk(f"{base}/bench/insert/", "same_body.lua", [str(same_file)]))
            args = [str(unique_file), str(WRK_THREADS), str(n * share)]
            runs["unique"].append(wrk(callback_url, "unique_bodies.lua", args))
            runs["repeated"].append(wrk(callback_url, "same_body.lua", [str(same_file)]))
    finally:
        stop(web)
    if max(r["requests"] for r in runs["unique"]) > share - 2 * WRK_CONNECTIONS:
        raise RuntimeError(f"a round sent more than its {share} unique bodies: add prompts")
    queued = OrmQ.objects.count()
    baseline, unique, repeated = (median_run(runs[k]) for k in ("baseline", "unique", "repeated"))
    totals = {k: sum(r["requests"] - r["non_2xx"] for r in v) for k, v in runs.items()}
    acknowledged = totals["unique"] + totals["repeated"]

    # The worker applies what the edge stored: every callback confirmed and applied (or a duplicate).
    worker_log = tmp / "qcluster-callbacks.log"
    t0 = time.perf_counter()
    worker = start(WORKER, process_env(db_url, Q_WORKERS="2"), worker_log)
    try:
        wait_until(lambda: not OrmQ.objects.exists(), 1800, "the callbacks to drain", worker, worker_log)
    finally:
        stop(worker)
    applied_seconds = time.perf_counter() - t0
    check = callbacks_check(acknowledged, repeated_checkout)
    stored = check["stored"]
    # The worker filled in each stored callback's CheckoutRequestID (duplicates too).
    unique_logs = CallbackLog.objects.filter(source="daraja").exclude(checkout_request_id=repeated_checkout)
    stored_unique = unique_logs.count()
    distinct_unique = unique_logs.values("checkout_request_id").distinct().count()
    # At the edge: each unique body stored once and none lost, every stored callback queued once.
    if stored_unique < totals["unique"]:
        check["problems"].append(f"lost: {totals['unique']} unique acknowledged, {stored_unique} stored")
    if distinct_unique != stored_unique:
        check["problems"].append(f"doubled: {stored_unique} unique stored, {distinct_unique} distinct")
    if queued != stored:
        check["problems"].append(f"{stored} callbacks stored, {queued} queued")

    def callback_row(work, measured, stored_n, extra):
        limits = {"non_2xx": (measured["non_2xx"] + measured["socket_errors"], 0)}
        limits["problems"] = (len(check["problems"]), 0)
        return row(
            work,
            f"{WRK_ROUNDS} x {WRK_SECONDS} s of wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} (median run), "
            "gunicorn 2 sync workers",
            1 / measured["rps"],
            1 / baseline["rps"],
            2,
            extra={
                "req_per_s": measured["rps"],
                "baseline_req_per_s": baseline["rps"],
                "share_of_baseline": round(measured["rps"] / baseline["rps"], 2),
                "p99_ms": measured["p99_ms"],
                "baseline_p99_ms": baseline["p99_ms"],
                "stored": stored_n,
                **extra,
            },
            limits=limits,
        )

    return [
        callback_row(
            "stk_callbacks_unique",
            unique,
            stored_unique,
            {"requests": totals["unique"], "queued": queued},
        ),
        callback_row(
            "stk_callbacks_repeated",
            repeated,
            stored - stored_unique,
            {
                "requests": totals["repeated"],
                "worker_applied_per_s": round(stored / applied_seconds, 1),
                "outcomes": check["outcomes"],
                "paid_orders": check["paid_orders"],
                "problems": check["problems"],
            },
        ),
    ]


# --- the queue -------------------------------------------------------------------------------


def _sessions() -> int:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cur.fetchone()[0]


def run_queue(db_url: str, row, tasks: int, tmp: Path) -> list[dict]:
    from django.db import DatabaseError, connection
    from django_q.models import OrmQ, Task
    from django_q.tasks import async_task

    from reconciliation import tasks as reconciliation_tasks

    codes = [f"UL{n:08d}" for n in range(tasks)]  # receipts nobody has claimed: a C2B burst
    OrmQ.objects.all().delete()
    Task.objects.all().delete()
    # The rows before (callbacks applied, seeding) leave dead rows and dirty pages: vacuum and
    # flush them now, so the enqueue is not charged for the autovacuum and checkpoint they would
    # start in the middle of it.
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    try:  # superuser or pg_checkpoint (scripts/bench.sh's server: yes)
        with connection.cursor() as cur:
            cur.execute("CHECKPOINT")
    except DatabaseError:
        pass

    from django_q.brokers.orm import ORM
    from django_q.conf import Conf

    from console.kernel.queue import OrmBroker
    from reconciliation.services.matcher import reconcile_later

    def stock_enqueue(code):  # before: django-q2's own ORM broker, a new one per call
        async_task(
            "reconciliation.tasks.reconcile", trigger="receipt", codes=[code], broker=ORM(list_key=ASIDE)
        )

    flushed_broker = OrmBroker(list_key=ASIDE)
    paths = {
        # Outside a transaction on_commit runs at once: each receipt's enqueue is its own commit.
        "hint": (lambda code: reconcile_later(trigger="receipt", codes=[code]), codes),
        # The same task through plain async_task (the callback edge's and imports' path): it waits
        # for the WAL flush.
        "flushed": (
            lambda code: async_task(
                "reconciliation.tasks.reconcile", trigger="receipt", codes=[code], broker=flushed_broker
            ),
            codes,
        ),
        # What the issue measured (96/s): the stock broker with CONN_MAX_AGE 0, which closes and
        # opens the connection on every enqueue. Fewer tasks: it is slow.
        "before": (stock_enqueue, codes[: max(tasks // 5, 50)]),
    }
    seconds: dict[str, list[float]] = {name: [] for name in paths}
    max_age = connection.settings_dict["CONN_MAX_AGE"]
    # This process runs its own tasks inline (bench.py sets Q_SYNC); the servers do not.
    Conf.SYNC, sync = False, Conf.SYNC
    try:
        for part in range(5):  # interleaved batches, the median counts: a slow second hits all three
            for name, (enqueue_one, subset) in paths.items():
                batch = subset[part::5]
                connection.close()  # the next connection gets this path's CONN_MAX_AGE
                connection.settings_dict["CONN_MAX_AGE"] = 0 if name == "before" else max_age
                t0 = time.perf_counter()
                for code in batch:
                    enqueue_one(code)
                seconds[name].append((time.perf_counter() - t0) / len(batch))
    finally:
        Conf.SYNC = sync
        connection.close()
        connection.settings_dict["CONN_MAX_AGE"] = max_age
    per_task, flushed, before = (statistics.median(seconds[k]) for k in ("hint", "flushed", "before"))
    OrmQ.objects.filter(key=ASIDE).delete()  # the drain takes the hints only

    # The drain's baseline: the same task function, called for each code in a loop (the queued
    # tasks wait: this process runs them inline, no cluster is up yet).
    t0 = time.perf_counter()
    for code in codes:
        reconciliation_tasks.reconcile(trigger="receipt", codes=[code])
    loop_seconds = time.perf_counter() - t0
    connection.close()

    enqueue = row(
        "queue_enqueue",
        f"{tasks} reconcile hints, one commit each (median of 5 interleaved batches)",
        per_task,
        before,
        0.1,
        extra={
            "tasks_per_s": round(1 / per_task),
            "before_same_run_per_s": round(1 / before, 1),
            "before_issue_per_s": ENQUEUE_BEFORE,
            "times_the_issue_figure": round(1 / per_task / ENQUEUE_BEFORE, 1),
            "flushed_async_task_per_s": round(1 / flushed),
        },
    )

    from django.db.models import Max, Min

    from console.processes import WORKER

    def drain(workers: int) -> tuple[float, int, int]:
        """Start one qcluster of `workers`, wait until every queued task is done: (seconds, failed,
        new connections). A task's "started" is when it was queued (django-q2 stamps the
        package), so the drain runs from the first task done to the last, plus one task's own
        time (the loop's mean)."""
        Task.objects.all().delete()
        sessions_before = _sessions()
        log = tmp / f"qcluster-drain-{workers}.log"
        cluster = start(WORKER, process_env(db_url, Q_WORKERS=str(workers)), log)
        try:
            wait_until(lambda: Task.objects.count() >= tasks, 1800, "the queue to drain", cluster, log)
        finally:
            stop(cluster)
        span = Task.objects.aggregate(first=Min("stopped"), last=Max("stopped"))
        seconds = (span["last"] - span["first"]).total_seconds() + loop_seconds / tasks
        return seconds, Task.objects.filter(success=False).count(), _sessions() - sessions_before

    # One worker against the one-process loop: what the queue adds to each task. Then the same
    # tasks again for one box's worker (two processes): its rate, for the README's sizing.
    drain_seconds, failed, new_sessions = drain(1)
    Conf.SYNC = False
    try:
        for code in codes:
            reconcile_later(trigger="receipt", codes=[code])
    finally:
        Conf.SYNC = sync
    with_two, failed_two, _ = drain(2)
    overhead_ms = (drain_seconds - loop_seconds) / tasks * 1000
    drain_row = row(
        "queue_drain",
        f"{tasks} reconcile tasks, one qcluster of 1 worker (then of 2)",
        drain_seconds,
        loop_seconds,
        float("inf"),
        extra={
            "tasks_per_s": round(tasks / drain_seconds, 1),
            "loop_tasks_per_s": round(tasks / loop_seconds, 1),
            "two_workers_tasks_per_s": round(tasks / with_two, 1),
            "new_connections_per_task": round(new_sessions / tasks, 3),
        },
        limits={"overhead_ms_per_task": (round(overhead_ms, 2), 3), "failed": (failed + failed_two, 0)},
    )
    return [enqueue, drain_row]


def run(url: str, row, bench_database, use_database, prepare, wanted, prompts: int, tasks: int) -> None:
    names = ("stk_callbacks_unique", "stk_callbacks_repeated", "queue_enqueue", "queue_drain")
    if not any(wanted(n) for n in names):
        return
    if subprocess.run(["which", "wrk"], capture_output=True).returncode != 0:
        sys.exit("wrk is not installed (scripts/bench.sh installs Debian's wrk)")
    db_url = bench_database(url, "bench_serve")
    use_database(db_url)
    prepare()
    with tempfile.TemporaryDirectory() as tmp:
        if wanted("stk_callbacks_unique") or wanted("stk_callbacks_repeated"):
            run_callbacks(db_url, row, prompts, Path(tmp))
        if wanted("queue_enqueue") or wanted("queue_drain"):
            run_queue(db_url, row, tasks, Path(tmp))
