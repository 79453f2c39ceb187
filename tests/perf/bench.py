"""One benchmark command for the scale targets: every row with its baseline in the same run.

    scripts/bench.sh                       # starts its own PostgreSQL (fsync on), full sizes
    scripts/bench.sh --scale 0.01          # the same rows at 1% size: a quick look
    DATABASE_URL=postgres://… python tests/perf/bench.py

Prints one JSON line per row: the work, its size, the figures, the baseline measured in the same
run, the ratio, the target and pass/fail. Each measured piece runs in a forked child of an
already set-up Django process, so Python and Django start-up are excluded without subtracting a
no-op command, and the child's peak RSS (os.wait4) is the piece's own.

Rows (see docs/performance.md for what each baseline means):
  statement_import   import_statement of N paid-in + N/10 charge rows  vs  COPY of the rows it wrote
  whatsapp_matching  import_whatsapp (import + matching) of C claims  vs  COPY of the claims and one
                     INSERT … SELECT writing the same entries and postings
  matcher_idle       a matcher run with nothing new  vs  the same run on an empty database
  export_csv         ledger CSV export of P postings  vs  COPY (same query) TO STDOUT
  export_xlsx        ledger XLSX export of X postings  vs  the CSV export of the same rows
  journal_search     journal search by number / receipt at E entries  vs  the same page at 1k
  dashboard          the dashboard at E rows  vs  at 1k rows (and its query count)
  orders_date_filter orders list with a date filter at E rows  vs  at 1k
  journal_date_filter journal with a date filter at E rows  vs  at 1k
  stk_callbacks_unique, stk_callbacks_repeated, queue_enqueue, queue_drain: see bench_serving.py

BENCH_PROFILE=/tmp/prof writes a cProfile of each measured piece to /tmp/prof.<pid> (the figures
then include the profiler's overhead): what the next optimisation should go after.

The database it uses is its own (`<name>_bench`, dropped and created) on the server in
DATABASE_URL; the server should run with fsync on, as production does.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "perf"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")
os.environ.setdefault("CACHE_URL", "locmemcache://")
os.environ.setdefault("Q_SYNC", "true")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost")
os.environ["OTP_REQUIRED_ROLES"] = "no-role"  # the bench user measures pages, not the second factor
os.environ.setdefault("STATICFILES_BACKEND", "django.contrib.staticfiles.storage.StaticFilesStorage")

FULL = {
    "statement_rows": 100_000,
    "claims": 10_000,
    "entries": 1_000_000,
    "orders": 1_000_000,
    "export_postings": 1_000_000,
    "xlsx_postings": 100_000,
    "queue_tasks": 5_000,
}
STK_PROMPTS = 40_000  # pending prompts for the callback rows: more than wrk can send in its run
SMALL_ROWS = 1_000
REPEAT = 5  # page timings: median of this many requests after one warm-up


# --- measuring -------------------------------------------------------------------------------


def in_child(fn, *args):
    """Run fn(*args) in a forked child; return (its result, its peak RSS in MB)."""
    from django.db import connections

    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    reader, writer = ctx.Pipe(duplex=False)

    def target():
        try:
            writer.send(("ok", fn(*args)))
        except BaseException as exc:  # noqa: BLE001 (reported to the parent)
            import traceback

            writer.send(("error", f"{exc!r}\n{traceback.format_exc()}"))
        finally:
            from django.db import connections as child_connections

            child_connections.close_all()

    proc = ctx.Process(target=target)
    proc.start()
    kind, value = reader.recv()
    _, _, usage = os.wait4(proc.pid, 0)
    proc._popen.returncode = 0  # already reaped by wait4
    if kind == "error":
        raise RuntimeError(value)
    return value, usage.ru_maxrss / 1024


def counted(fn):
    """Seconds and query count of fn() (query count from a wrapper, so DEBUG stays off)."""
    from django.db import connection

    queries = [0]

    def count(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        t0 = time.perf_counter()
        if os.environ.get("BENCH_PROFILE"):
            import cProfile

            prof = cProfile.Profile()
            result = prof.runcall(fn)
            prof.dump_stats(os.environ["BENCH_PROFILE"] + f".{os.getpid()}")
        else:
            result = fn()
        seconds = time.perf_counter() - t0
    return seconds, queries[0], result


def row(work, size, seconds, baseline, target_ratio, extra=None, limits=None):
    ratio = seconds / baseline if baseline else None
    ok = ratio is not None and ratio <= target_ratio
    for key, (value, limit) in (limits or {}).items():
        ok = ok and value <= limit
    line = {
        "work": work,
        "size": size,
        "seconds": round(seconds, 4),
        "baseline_seconds": round(baseline, 4),
        "ratio": round(ratio, 2) if ratio is not None else None,
        "target_ratio": target_ratio,
        **({k: v for k, (v, _) in (limits or {}).items()}),
        **({f"target_{k}": lim for k, (_, lim) in (limits or {}).items()}),
        **(extra or {}),
        "pass": ok,
    }
    print(json.dumps(line), flush=True)
    return line


# --- database --------------------------------------------------------------------------------


def bench_database(url: str, suffix: str) -> str:
    """Drop and create <db>_<suffix> on the server in url; return its URL."""
    import psycopg2

    base, _, name = url.rpartition("/")
    name = name.split("?")[0] or "tillbook"
    target = f"{name}_{suffix}"
    conn = psycopg2.connect(f"{base}/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{target}"')
    conn.close()
    return f"{base}/{target}"


def use_database(url: str) -> None:
    import environ
    from django.db import connections

    connections.close_all()
    parsed = environ.Env.db_url_config(url)
    settings = connections["default"].settings_dict
    for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT"):
        settings[key] = parsed.get(key, settings.get(key))


def prepare() -> None:
    from django.core.management import call_command

    from catalog.models import Bundle

    call_command("migrate", verbosity=0)
    call_command("setup_roles", verbosity=0)
    if not Bundle.objects.exists():
        call_command("loaddata", str(ROOT / "fixtures" / "bundles.json"), verbosity=0)


def superuser():
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    user = user_model.objects.filter(username="bench").first()
    return user or user_model.objects.create_superuser("bench", "bench@example.com", "bench-pass-123")


def max_ids(tables):
    from django.db import connection

    out = {}
    with connection.cursor() as cur:
        for table in tables:
            cur.execute(f"SELECT coalesce(max(id), 0) FROM {table}")  # noqa: S608 (fixed names)
            out[table] = cur.fetchone()[0]
    return out


def copy_baseline(written: dict, select_sql: dict | None = None) -> float:
    """Seconds to COPY the rows each table gained (id > before) into a copy of that table.

    The copies are made LIKE the originals with their indexes, so the baseline pays for the same
    index maintenance; `select_sql` names tables written by INSERT … SELECT instead of COPY.
    """
    from django.db import connection

    select_sql = select_sql or {}
    dumps = {}
    with connection.cursor() as cur:
        raw = cur.cursor if hasattr(cur, "cursor") else cur
        for table, before in written.items():
            cur.execute(f"DROP TABLE IF EXISTS bench_{table}")
            cur.execute(
                f"CREATE UNLOGGED TABLE bench_{table} (LIKE {table} INCLUDING DEFAULTS INCLUDING INDEXES)"
            )
            cur.execute(f"ALTER TABLE bench_{table} SET LOGGED")
            if table not in select_sql:
                buf = io.StringIO()
                raw.copy_expert(f"COPY (SELECT * FROM {table} WHERE id > {int(before)}) TO STDOUT", buf)
                buf.seek(0)
                dumps[table] = buf
    connection.commit() if not connection.get_autocommit() else None
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        raw = cur.cursor if hasattr(cur, "cursor") else cur
        cur.execute("BEGIN")
        for table, buf in dumps.items():
            raw.copy_expert(f"COPY bench_{table} FROM STDIN", buf)
        for table, sql in select_sql.items():
            cur.execute(f"INSERT INTO bench_{table} {sql.format(before=int(written[table]))}")
        cur.execute("COMMIT")
    seconds = time.perf_counter() - t0
    with connection.cursor() as cur:
        for table in written:
            cur.execute(f"DROP TABLE bench_{table}")
    return seconds


# --- the rows --------------------------------------------------------------------------------


def statement_and_chat(rows: int, claims: int):
    import random

    import bench_reconciliation as gen
    from django.utils import timezone

    rng = random.Random(20261201)
    start = timezone.now() - dt.timedelta(days=2, hours=6)
    data, payments = gen.build_statement(rows, rng, start)
    chat = gen.build_chat(payments, claims, rng)
    return data, chat


def run_statement_import(path: str, rows: int) -> dict:
    from django.core.management import call_command

    tables = ["reconciliation_tillreceipt", "ledger_journalentry", "ledger_posting", "console_auditevent"]
    before = max_ids(tables)

    def child():
        seconds, queries, _ = counted(lambda: call_command("import_statement", path, stdout=io.StringIO()))
        return seconds, queries

    (seconds, queries), rss = in_child(child)
    baseline = copy_baseline(before)
    return row(
        "statement_import",
        f"{rows} paid-in + {rows // 10} charge rows",
        seconds,
        baseline,
        5,
        extra={"rows_per_s": round(rows / seconds), "queries": queries},
        limits={"rss_mb": (round(rss), 200)},
    )


def run_whatsapp_matching(path: str, claims: int) -> dict:
    from django.conf import settings
    from django.core.management import call_command

    from ledger.books import books_check
    from reconciliation.models import Claim

    tables = [
        "reconciliation_whatsappmessage",
        "reconciliation_claim",
        "ledger_journalentry",
        "ledger_posting",
        "console_auditevent",
    ]
    before = max_ids(tables)
    # The pages' seeded orders carry no entries (set-based seed): those lines are there already.
    known_problems = set(books_check())

    def child():
        settings.CLAIM_GRACE = 0  # every claim is decidable now
        seconds, queries, _ = counted(lambda: call_command("import_whatsapp", path, stdout=io.StringIO()))
        return seconds, queries

    (seconds, queries), rss = in_child(child)
    verified = Claim.objects.filter(status="verified").count()
    # Correctness stays proven: the outcome of every claim (status/reason counts, comparable run
    # to run on the same generated corpus) and the books' invariants (no new problem).
    outcomes = Counter(
        f"{status}/{reason}" if reason else status
        for status, reason in Claim.objects.values_list("status", "reason")
    )
    problems = [p for p in books_check() if p not in known_problems]
    entry_sql = "SELECT * FROM ledger_journalentry WHERE id > {before}"
    posting_sql = (
        "SELECT p.* FROM ledger_posting p JOIN ledger_journalentry e ON e.id = p.entry_id "
        "WHERE p.id > {before}"
    )
    baseline = copy_baseline(before, {"ledger_journalentry": entry_sql, "ledger_posting": posting_sql})
    return row(
        "whatsapp_matching",
        f"{claims} claims x receipts in the database",
        seconds,
        baseline,
        30,
        extra={
            "claims_per_s": round(claims / seconds),
            "verified": verified,
            "verified_share": round(verified / claims, 3) if claims else 0,
            "queries": queries,
            "queries_per_verification": round(queries / verified, 1) if verified else None,
            "rss_mb": round(rss),
            "outcomes": dict(sorted(outcomes.items())),
        },
        limits={"books_problems": (len(problems), 0)},
    )


def matcher_seconds() -> tuple[float, int]:
    from django.conf import settings

    from reconciliation.services.matcher import claims_reconcile

    def child():
        settings.CLAIM_GRACE = 0
        seconds, queries, _ = counted(lambda: claims_reconcile(trigger="schedule"))
        return seconds, queries

    (seconds, queries), _ = in_child(child)
    return seconds, queries


def run_matcher_idle(empty_url: str, main_url: str) -> dict:
    from reconciliation.models import Claim
    from reconciliation.services.matcher import CHANGES_OVERLAP

    open_claims = Claim.objects.filter(status__in=["pending", "needs_review"]).count()
    matcher_seconds()  # looks at the import run's writes (its explanations)
    # Scheduled runs look back CHANGES_OVERLAP before the previous run for changes committed late;
    # the import's receipts and claims are that recent here. Let that much time pass, as it does
    # between runs a minute apart with nothing new, so the runs measured are the idle ones.
    time.sleep(CHANGES_OVERLAP.total_seconds() + 1)
    seconds, queries = min(matcher_seconds() for _ in range(3))
    use_database(empty_url)
    baseline, _ = min(matcher_seconds() for _ in range(3))
    use_database(main_url)
    return row(
        "matcher_idle",
        f"{open_claims} open claims, nothing new",
        seconds,
        baseline,
        2,
        extra={"queries": queries},
    )


def seed_books(entries: int, orders: int) -> None:
    """Add entries (two postings each) and orders with set-based SQL, ledger triggers off."""
    from django.db import connection, transaction

    from catalog.models import Bundle
    from ledger.models import Account, EntryCounter

    accounts = dict(Account.objects.values_list("key", "id"))
    debit, credit = accounts["stk_clearing_payhero"], accounts["bundles_owed"]
    bundle = Bundle.objects.order_by("id").first()
    start_seq = (EntryCounter.objects.get(name="journal").last or 0) + 1
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")
        if orders:
            cur.execute(
                """
                INSERT INTO ledger_order (reference, bundle_id, price, payer_msisdn, recipient_msisdn,
                    channel, gateway, status, status_reason, amount_paid, created_at, paid_at,
                    delivered_at, updated_at)
                SELECT 'B' || lpad(s::text, 9, '0'), %(bundle)s, 150.00,
                       '254712' || lpad(mod(s, 1000000)::text, 6, '0'),
                       '254722' || lpad(mod(s, 1000000)::text, 6, '0'),
                       CASE WHEN mod(s, 5) = 0 THEN 'till' ELSE 'stk' END,
                       CASE WHEN mod(s, 5) = 0 THEN '' ELSE 'payhero' END,
                       CASE WHEN mod(s, 10) = 0 THEN 'failed' ELSE 'delivered' END, '',
                       150.00, t, t, t + interval '2 minutes', t
                FROM generate_series(1, %(n)s) AS s,
                     LATERAL (SELECT now() - interval '60 days' + s * (interval '60 days' / %(n)s) AS t) x
                ON CONFLICT DO NOTHING
                """,
                {"bundle": bundle.pk, "n": orders},
            )
        cur.execute(
            """
            INSERT INTO ledger_journalentry
                (seq, number, kind, posted_at, memo, reason, receipt_code, channel)
            SELECT s, 'JE-' || lpad(s::text, 7, '0'), 'stk_payment',
                   now() - interval '60 days' + (s - %(start)s) * (interval '60 days' / %(n)s),
                   'Bench payment ' || s, '', 'BN' || lpad(s::text, 8, '0'), 'stk'
            FROM generate_series(%(start)s, %(start)s + %(n)s - 1) AS s
            """,
            {"start": start_seq, "n": entries},
        )
        cur.execute(
            """
            INSERT INTO ledger_posting (entry_id, account_id, amount)
            SELECT e.id, a.account_id, a.amount
            FROM ledger_journalentry e
            CROSS JOIN (VALUES (%(debit)s, 150.00), (%(credit)s, -150.00)) AS a(account_id, amount)
            WHERE e.seq >= %(start)s
            ORDER BY e.id
            """,
            {"start": start_seq, "debit": debit, "credit": credit},
        )
        EntryCounter.objects.filter(name="journal").update(last=start_seq + entries - 1)
    with connection.cursor() as cur:
        # What autovacuum does to a live database: the visibility map lets index-only scans skip
        # the table (a freshly bulk-loaded table has none, which no production database shows).
        cur.execute("VACUUM ANALYZE")


def page_seconds(path: str) -> tuple[float, int, int]:
    """Median seconds and query count of an admin page, as the bench superuser."""
    from django.test import Client

    def child():
        client = Client()
        client.force_login(superuser())
        response = client.get(path)  # warm-up
        status = response.status_code
        times, queries = [], 0
        for _ in range(REPEAT):
            seconds, queries, response = counted(lambda: client.get(path))
            times.append(seconds)
        return statistics.median(times), queries, status

    (seconds, queries, status), _ = in_child(child)
    if status != 200:
        raise RuntimeError(f"{path} answered {status}")
    return seconds, queries, status


def pages() -> dict:
    from django.utils import timezone

    from ledger.models import JournalEntry

    # A week: at 1k rows over 60 days that still fills a page (~117 rows), so the baseline draws
    # as many rows as the full-size page does (one day drew ~17: the ratio measured drawing).
    first, last = timezone.localdate() - dt.timedelta(days=9), timezone.localdate() - dt.timedelta(days=3)
    entry = JournalEntry.objects.order_by("-seq").values_list("number", "receipt_code").first() or (
        "JE-0000001",
        "",
    )
    date_q = f"{{f}}_from_0={first:%Y-%m-%d}&{{f}}_from_1=00:00&{{f}}_to_0={last:%Y-%m-%d}&{{f}}_to_1=23:59"
    return {
        "journal_search": [
            f"/admin/ledger/journalentry/?q={entry[0]}",
            f"/admin/ledger/journalentry/?q={entry[1] or 'NOPE000000'}",
        ],
        "dashboard": ["/admin/"],
        "orders_date_filter": ["/admin/ledger/order/?" + date_q.format(f="created_at")],
        "journal_date_filter": ["/admin/ledger/journalentry/?" + date_q.format(f="posted_at")],
    }


def measure_pages() -> dict:
    out = {}
    for name, paths in pages().items():
        results = [page_seconds(p) for p in paths]
        out[name] = (max(r[0] for r in results), max(r[1] for r in results))
    return out


def run_exports(postings: int, xlsx_postings: int) -> list[dict]:
    from django.db import connection

    from ledger.books import exports
    from ledger.models import Posting

    first = Posting.objects.order_by("entry__posted_at").values_list("entry__posted_at", flat=True)[0]
    from console.kernel.clock import nairobi_day

    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, count in (("csv", postings), ("xlsx", xlsx_postings)):
            count = min(count, Posting.objects.count())
            stop = Posting.objects.order_by("entry__posted_at").values_list("entry__posted_at", flat=True)[
                count - 1
            ]
            filters = exports.export_filters(date_from=nairobi_day(first), date_to=nairobi_day(stop))
            rows = exports.export_count(filters)

            def child(fmt=fmt, filters=filters):
                t0 = time.perf_counter()
                written = exports.export_write(filters=filters, fmt=fmt, path=os.path.join(tmp, f"out.{fmt}"))
                return time.perf_counter() - t0, written

            (seconds, written), rss = in_child(child)
            if fmt == "csv":
                qs = exports._queryset(filters)  # the export's own query
                sql, params = qs.query.sql_with_params()
                with connection.cursor() as cur:
                    raw = cur.cursor if hasattr(cur, "cursor") else cur
                    literal = raw.mogrify(sql, params).decode()
                    t0 = time.perf_counter()
                    with open(os.path.join(tmp, "copy.csv"), "w") as fh:
                        raw.copy_expert(f"COPY ({literal}) TO STDOUT WITH CSV HEADER", fh)
                    baseline = time.perf_counter() - t0
                lines.append(
                    row(
                        "export_csv",
                        f"{written} postings",
                        seconds,
                        baseline,
                        2,
                        extra={"rows_per_s": round(written / seconds)},
                        limits={"rss_mb": (round(rss), 200)},
                    )
                )
            else:
                # Baseline: the CSV export of the same rows.
                def csv_child(filters=filters):
                    t0 = time.perf_counter()
                    exports.export_write(filters=filters, fmt="csv", path=os.path.join(tmp, "same.csv"))
                    return time.perf_counter() - t0

                baseline, _ = in_child(csv_child)
                lines.append(
                    row(
                        "export_xlsx",
                        f"{written} postings",
                        seconds,
                        baseline,
                        5,
                        extra={"rows_per_s": round(written / seconds), "rows_counted": rows},
                        limits={"rss_mb": (round(rss), 250)},
                    )
                )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every size (0.01 for a quick look)"
    )
    parser.add_argument("--only", action="append", default=[], help="run only these rows (repeatable)")
    args = parser.parse_args()
    sizes = {k: max(int(v * args.scale), 200) for k, v in FULL.items()}
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("DATABASE_URL must point at a PostgreSQL server (scripts/bench.sh starts one).")
    main_url = bench_database(url, "bench")
    empty_url = bench_database(url, "bench_empty")
    os.environ["DATABASE_URL"] = main_url

    import django

    django.setup()
    use_database(empty_url)
    prepare()
    use_database(main_url)
    prepare()
    superuser()
    want = set(args.only)

    def wanted(name):
        return not want or name in want

    print(json.dumps({"machine": os.uname().nodename, "cpus": os.cpu_count(), "sizes": sizes}), flush=True)

    # Pages at 1k rows first: the baselines for the same pages at full size.
    seed_books(SMALL_ROWS, SMALL_ROWS)
    small = measure_pages()

    with tempfile.TemporaryDirectory() as tmp:
        statement, chat = statement_and_chat(sizes["statement_rows"], sizes["claims"])
        Path(tmp, "statement.csv").write_bytes(statement)
        Path(tmp, "chat.txt").write_bytes(chat)
        if wanted("statement_import") or wanted("whatsapp_matching") or wanted("matcher_idle"):
            run_statement_import(str(Path(tmp, "statement.csv")), sizes["statement_rows"])
        if wanted("whatsapp_matching") or wanted("matcher_idle"):
            run_whatsapp_matching(str(Path(tmp, "chat.txt")), sizes["claims"])
        if wanted("matcher_idle"):
            run_matcher_idle(empty_url, main_url)

    import bench_serving

    bench_serving.run(
        url, row, bench_database, use_database, prepare, wanted, STK_PROMPTS, sizes["queue_tasks"]
    )
    use_database(main_url)

    later = ["export_csv", "export_xlsx", *pages()]
    if not any(wanted(name) for name in later):
        return  # the rows after this point need a million rows seeded: minutes for nothing
    seed_books(sizes["entries"], sizes["orders"])
    if wanted("export_csv") or wanted("export_xlsx"):
        run_exports(sizes["export_postings"], sizes["xlsx_postings"])
    large = measure_pages()
    for name, (seconds, queries) in large.items():
        if not wanted(name):
            continue
        extra = {"queries": queries, "queries_at_1k": small[name][1]}
        limits = {"queries": (queries, 12)} if name == "dashboard" else None
        row(
            name,
            f"{sizes['entries']} entries, {sizes['orders']} orders",
            seconds,
            small[name][0],
            2,
            extra,
            limits,
        )


if __name__ == "__main__":
    main()
