"""Benchmark: export N ledger postings and report the time and the peak memory (a script, not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:55432/tb_bench \\
        python tests/perf/bench_export.py --postings 1000000 --format csv

Seeds N postings (N/2 balanced two-line entries spread over January 2026) with set-based SQL
(generate_series on PostgreSQL; batched executemany on SQLite) unless the database already holds
them, then times `ledger.books.exports.export_write` for the whole month and prints seconds, rows/s and
peak RSS (resource.getrusage) before and after. Use a database of its own: it migrates it and
adds rows. On PostgreSQL the seeding skips the ledger triggers (session_replication_role =
replica, superuser only): one million deferred balance checks would time the seeding, not the
export.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")
os.environ.setdefault("CACHE_URL", "locmemcache://")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def seed(postings: int) -> None:
    from django.db import connection, transaction

    from ledger.models import Account, EntryCounter, Posting

    have = Posting.objects.count()
    if have >= postings:
        print(f"database already holds {have:,} postings; not seeding")
        return
    entries = (postings - have) // 2
    accounts = dict(Account.objects.values_list("key", "id"))
    debit, credit = accounts["stk_clearing_payhero"], accounts["bundles_owed"]
    start_seq = (EntryCounter.objects.get(name="journal").last or 0) + 1
    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SET LOCAL session_replication_role = replica")
            cur.execute(
                """
                INSERT INTO ledger_journalentry
                    (seq, number, kind, posted_at, memo, reason, receipt_code, channel)
                SELECT s, 'JE-' || lpad(s::text, 6, '0'), 'stk_payment',
                       timestamptz '2026-01-01 00:00:00+03' + (s - %(start)s) * (interval '31 days' / %(n)s),
                       'Bench payment ' || s, '', 'BENCH' || s, 'stk'
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
        else:
            base = dt.datetime(2025, 12, 31, 21, 0)  # naive UTC, as Django stores datetimes in SQLite
            step = dt.timedelta(days=31) / entries
            batch = 5000
            for first in range(start_seq, start_seq + entries, batch):
                seqs = range(first, min(first + batch, start_seq + entries))
                cur.executemany(
                    "INSERT INTO ledger_journalentry (seq, number, kind, posted_at, memo, reason,"
                    " receipt_code, channel) VALUES (%s, %s, 'stk_payment', %s, %s, '', %s, 'stk')",
                    [
                        (
                            s,
                            f"JE-{s:06d}",
                            (base + (s - start_seq) * step).strftime("%Y-%m-%d %H:%M:%S.%f"),
                            f"Bench payment {s}",
                            f"B{s}",
                        )
                        for s in seqs
                    ],
                )
            cur.execute(
                "INSERT INTO ledger_posting (entry_id, account_id, amount) SELECT id, %s, 150 FROM"
                " ledger_journalentry WHERE seq >= %s",
                [debit, start_seq],
            )
            cur.execute(
                "INSERT INTO ledger_posting (entry_id, account_id, amount) SELECT id, %s, -150 FROM"
                " ledger_journalentry WHERE seq >= %s",
                [credit, start_seq],
            )
        EntryCounter.objects.filter(name="journal").update(last=start_seq + entries - 1)
        if connection.vendor == "postgresql":
            cur.execute("ANALYZE ledger_journalentry; ANALYZE ledger_posting")
    print(f"seeded {entries:,} entries / {2 * entries:,} postings in {time.perf_counter() - t0:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postings", type=int, default=1_000_000)
    parser.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    parser.add_argument("--no-migrate", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from ledger.books import exports

    if not args.no_migrate:
        call_command("migrate", verbosity=0)
    seed(args.postings)

    filters = exports.export_filters(date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 1, 31))
    rss_before = peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"bench.{args.format}")
        t0 = time.perf_counter()
        rows = exports.export_write(filters=filters, fmt=args.format, path=path)
        seconds = time.perf_counter() - t0
        size = os.path.getsize(path)
    rss_after = peak_rss_mb()
    print(f"database: {connection.vendor}; format: {args.format}")
    rate = rows / seconds if seconds else 0
    print(f"exported {rows:,} postings in {seconds:.1f} s ({rate:,.0f} rows/s), file {size / 1e6:.1f} MB")
    print(f"peak RSS: {rss_before:.0f} MB before the export, {rss_after:.0f} MB after")


if __name__ == "__main__":
    main()
