"""Benchmark: a large statement import, a WhatsApp export and the matcher (a script, not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:55432/tb_bench_recon \\
        python tests/perf/bench_reconciliation.py --rows 100000 --claims 20000

Builds an Org-portal statement CSV of N paid-in rows (plus one charge row per ten payments), and
a WhatsApp chat export in which customers claim a share of those codes (some with typos, some
with wrong amounts, some for codes that never arrived). Then it times, through the same services
the admin and the commands use:

1. the statement import (parse, set-based insert, bulk booking, progress updates);
2. the WhatsApp import (messages and claims);
3. one matcher run over every claim;
4. a second matcher run (nothing left to do: shows the steady-state cost of the schedule);

and prints seconds, rows/s, query counts and peak RSS. Use a database of its own: it migrates it
and adds rows; run with `--reset` to empty the reconciliation and books tables first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")
os.environ.setdefault("CACHE_URL", "locmemcache://")
os.environ.setdefault("Q_SYNC", "true")

from console.kernel.mpesa import date_prefix  # noqa: E402  (after sys.path points at the project)

PRICES = [150, 250, 500, 750, 1500, 2500]
ALPHABET = "ABCDEFGHIJKLMNPQRSTUVWXYZ0123456789"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def code_for(day: dt.date, rng: random.Random) -> str:
    return date_prefix(day) + "".join(rng.choice(ALPHABET) for _ in range(7))


def build_statement(rows: int, rng: random.Random, start: dt.datetime) -> tuple[bytes, list[tuple]]:
    header = (
        "Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,Withdrawn,"
        "Balance,Balance Confirmed,Reason Type,Other Party Info,Linked Transaction ID,A/C No."
    )
    lines = ["Organisation Name: TILLBOOK DATA", "Shortcode: 6944804", "", header]
    payments, seen = [], set()
    step = dt.timedelta(days=2) / max(rows, 1)
    balance = Decimal("0")
    for i in range(rows):
        when = start + step * i
        code = code_for(when.date(), rng)
        while code in seen:
            code = code_for(when.date(), rng)
        seen.add(code)
        amount = Decimal(rng.choice(PRICES))
        balance += amount
        stamp = when.strftime("%d-%m-%Y %H:%M:%S")
        phone = f"2547{rng.randint(10, 99)}****{rng.randint(100, 999)}"
        lines.append(
            f"{code},{stamp},{stamp},Merchant Payment from {phone} - CUSTOMER {i},Completed,{amount:.2f},,"
            f"{balance:.2f},TRUE,Customer Merchant Payment,{phone} - CUSTOMER {i},,"
        )
        if i % 10 == 0:
            lines.append(
                f"{code},{stamp},{stamp},Pay merchant Charge,Completed,,0.55,{balance:.2f},TRUE,Pay Charge,,,"
            )
        payments.append((code, amount, when))
    return ("\n".join(lines) + "\n").encode(), payments


def build_chat(payments, claims: int, rng: random.Random) -> bytes:
    lines = ["01/06/2026, 08:00 - Messages and calls are end-to-end encrypted. Tap to learn more."]
    slips = {"0": "O", "1": "I", "5": "S", "8": "B", "2": "Z"}
    for i in range(claims):
        code, amount, when = payments[(i * 7) % len(payments)]
        kind = i % 20
        if kind == 0:  # a look-alike slip
            for digit, letter in slips.items():
                if digit in code[3:]:
                    code = code[:3] + code[3:].replace(digit, letter, 1)
                    break
        elif kind == 1:  # a code that never reached the till
            code = code[:3] + "".join(rng.choice(ALPHABET) for _ in range(7))
        sent = when + dt.timedelta(minutes=rng.randint(1, 50))
        sender = f"+254 7{rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(100, 999)}"
        text = f"Hi, paid {amount:.0f} code {code} load 07{rng.randint(10, 99)}{rng.randint(100000, 999999)}"
        lines.append(f"{sent:%d/%m/%Y, %H:%M} - {sender}: {text}")
    return ("\n".join(lines) + "\n").encode()


def timed(label: str, fn, rows: int | None = None):
    from django.db import connection, reset_queries

    reset_queries()
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    rate = f", {rows / seconds:,.0f} rows/s" if rows else ""
    queries = len(connection.queries)
    print(f"{label}: {seconds:.2f} s{rate}, {queries:,} queries, peak RSS {peak_rss_mb():.0f} MB")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000, help="paid-in rows in the statement")
    parser.add_argument("--claims", type=int, default=20_000, help="claims in the WhatsApp export")
    parser.add_argument("--reset", action="store_true", help="empty reconciliation and books tables first")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    settings.DEBUG = True  # count queries
    call_command("migrate", verbosity=0)
    call_command("setup_roles", verbosity=0)
    from catalog.models import Bundle

    if not Bundle.objects.exists():
        call_command("loaddata", str(ROOT / "fixtures" / "bundles.json"), verbosity=0)
    if args.reset:
        _reset(connection)

    from reconciliation.services import claims as claim_services
    from reconciliation.services import matcher, receipts

    rng = random.Random(20260601)
    start = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=3)))
    data, payments = build_statement(args.rows, rng, start)
    print(f"statement: {args.rows:,} payments, {len(data) / 1e6:.1f} MB; database {connection.vendor}")
    imp = timed(
        "statement import",
        lambda: receipts.statement_import_start(
            import_id=receipts.statement_import_create(data=data, filename="bench.csv").pk, inline=True
        ),
        args.rows,
    )
    print(f"  counts: {imp.counts}")
    chat = build_chat(payments, args.claims, rng)
    settings.CLAIM_GRACE = 0  # every claim is decidable now
    result = timed(
        "whatsapp import",
        lambda: claim_services.whatsapp_import(data=chat, filename="bench.txt", user=None),
        args.claims,
    )
    print(f"  counts: {getattr(result, 'counts', result)}")
    run = timed("matcher (first run)", lambda: matcher.claims_reconcile(trigger="manual"), args.claims)
    print(f"  counts: {getattr(run, 'counts', run)}")
    timed("matcher (nothing left)", lambda: matcher.claims_reconcile(trigger="manual"))


def _reset(connection) -> None:
    tables = [
        "reconciliation_claim",
        "reconciliation_whatsappmessage",
        "reconciliation_whatsappimport",
        "reconciliation_tillreceipt",
        "reconciliation_statementimport",
        "reconciliation_reconciliationrun",
        "console_auditevent",
        "ledger_posting",
        "ledger_journalentry",
        "ledger_order",
    ]
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SET session_replication_role = replica")
            cur.execute("TRUNCATE " + ", ".join(tables) + " CASCADE")
            cur.execute("SET session_replication_role = DEFAULT")
        else:
            for t in tables:
                cur.execute(f"DELETE FROM {t}")  # noqa: S608 (fixed table names)
        cur.execute("UPDATE ledger_entrycounter SET last = 0")


if __name__ == "__main__":
    main()
