"""A chunk of statement rows into till receipts on PostgreSQL: COPY and set-based SQL.

The same receipts, entries, postings and settlements as the ORM path (statements.
_insert_statement_rows on other databases), without a model instance per row: the rows are
COPYed into a temporary staging table, rows already recorded (by any source) or repeated in the
file are dropped there, the rest become till receipts by one INSERT … SELECT, and their entries
are posted set-based by ledger.books. Runs inside the caller's chunk transaction.
"""

from __future__ import annotations

import csv
import io
import json

from django.db import connection
from django.utils import timezone

from console.kernel.money import CENT
from ledger import books
from ledger.models import Channel, EntryKind, StkStatus
from reconciliation.models import ReceiptSource, TillReceipt

from .matcher import reconcile_later
from .settlement import sent_before, settlement_state, settlements_book, stk_payments

COPY_STAGE = (
    "COPY statement_stage (ord, code, amount, paid_at, payer_masked, payer_name, raw) "
    "FROM STDIN WITH (FORMAT csv)"
)

CREATE_STAGE = """
DROP TABLE IF EXISTS pg_temp.statement_stage;
CREATE TEMP TABLE statement_stage (
    ord integer NOT NULL, code varchar(12) NOT NULL, amount numeric(12, 2) NOT NULL,
    paid_at timestamptz NOT NULL, payer_masked varchar(80) NOT NULL, payer_name varchar(120) NOT NULL,
    raw jsonb NOT NULL, settlement varchar(10) NOT NULL DEFAULT '',
    settlement_note varchar(255) NOT NULL DEFAULT ''
) ON COMMIT DROP
"""
# Recorded already (a receipt with the code, from any source), or a repeat of an earlier row.
DROP_KNOWN = """
DELETE FROM statement_stage AS s
WHERE s.ord NOT IN (SELECT min(ord) FROM statement_stage GROUP BY code)
   OR EXISTS (SELECT 1 FROM reconciliation_tillreceipt AS t WHERE t.code = s.code)
RETURNING s.ord
"""
# The staged codes stk_payments could know as STK payments (an STK order holding the code, a
# successful prompt sent in the window, an STK payment entry): one join over the chunk, so
# stk_payments looks up only these few instead of every code in batches of ORM queries.
STK_CANDIDATES = """
SELECT s.code FROM statement_stage AS s
WHERE EXISTS (SELECT 1 FROM ledger_order AS o WHERE o.mpesa_receipt = s.code AND o.channel = %(stk)s)
   OR EXISTS (SELECT 1 FROM ledger_stkrequest AS r WHERE r.receipt = s.code AND r.status = %(success)s
              AND r.created_at >= %(sent_from)s AND r.created_at <= %(sent_to)s)
   OR EXISTS (SELECT 1 FROM ledger_journalentry AS e WHERE e.receipt_code = s.code AND e.kind = %(kind)s)
"""
MARK_SETTLEMENTS = """
UPDATE statement_stage AS s SET settlement = m.state, settlement_note = m.note
FROM unnest(%s::text[], %s::text[], %s::text[]) AS m(code, state, note) WHERE s.code = m.code
"""
# A receipt that lost a race to another source is skipped (ON CONFLICT): it is not this import's.
INSERT_RECEIPTS = """
INSERT INTO reconciliation_tillreceipt (code, amount, paid_at, payer_masked, payer_name, source,
    statement_import_id, raw, created_at, order_id, settlement, settlement_note)
SELECT code, amount, paid_at, payer_masked, payer_name, %(source)s, %(import_id)s, raw, %(now)s, NULL,
       settlement, settlement_note
FROM statement_stage ORDER BY ord
ON CONFLICT (code) DO NOTHING
RETURNING code
"""


def _stage_csv(rows) -> io.StringIO:
    buf = io.StringIO()
    out = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")  # quoted "" is text, never NULL
    for ord_, r in enumerate(rows):
        raw = {"row": r.row_number, "details": r.details, "reason_type": r.reason_type}
        out.writerow(
            (
                ord_,
                r.receipt,
                r.paid_in.quantize(CENT),
                r.completed_at.isoformat(),
                (r.payer_masked or "")[:80],
                (r.payer_name or "")[:120],
                json.dumps(raw),
            )
        )
    buf.seek(0)
    return buf


def statement_rows_copy(rows, imp, *, reconcile: bool = True) -> list[str]:
    """Record the chunk's new receipts for ``imp``, book them, queue matching for their codes
    (unless ``reconcile`` is off: the statement import queues one run for all its chunks).

    Returns the codes this import recorded, in the file's order. Call inside a transaction.
    """
    if not rows:
        return []
    with connection.cursor() as cursor:
        cursor.execute(CREATE_STAGE)
        cursor.cursor.copy_expert(COPY_STAGE, _stage_csv(rows))
        cursor.execute(DROP_KNOWN)
        dropped = {ord_ for (ord_,) in cursor.fetchall()}
        new = [r for i, r in enumerate(rows) if i not in dropped]
        # STK payments reaching the till are settlements, marked before the insert (as settlements_prepare).
        payments = {}
        if new:
            between = sent_before((min(r.completed_at for r in new), max(r.completed_at for r in new)))
            cursor.execute(
                STK_CANDIDATES,
                {
                    "stk": Channel.STK.value,
                    "success": StkStatus.SUCCESS.value,
                    "kind": EntryKind.STK_PAYMENT.value,
                    "sent_from": between[0],
                    "sent_to": between[1],
                },
            )
            candidates = [code for (code,) in cursor.fetchall()]
            if candidates:
                payments = stk_payments(candidates, sent_between=between)
        if payments:
            states = {
                r.receipt: settlement_state(r.paid_in.quantize(CENT), payments[r.receipt])
                for r in new
                if r.receipt in payments
            }
            cursor.execute(
                MARK_SETTLEMENTS,
                [list(states), [s for s, _ in states.values()], [n for _, n in states.values()]],
            )
        cursor.execute(
            INSERT_RECEIPTS,
            {
                "source": ReceiptSource.STATEMENT.value,
                "import_id": imp.pk,
                "now": timezone.now(),
            },
        )
        inserted = {code for (code,) in cursor.fetchall()}
        cursor.execute("DROP TABLE statement_stage")
    mine = [r for r in new if r.receipt in inserted]
    # Booked in the order of payment, as the ORM path books the receipts it read back by paid_at.
    till = sorted((r for r in mine if r.receipt not in payments), key=lambda r: r.completed_at)
    books.post_till_receipts_set_based([(r.receipt, r.paid_in.quantize(CENT), r.completed_at) for r in till])
    settling = [r.receipt for r in mine if r.receipt in payments]
    if settling:
        receipts = list(
            TillReceipt.objects.filter(code__in=settling, statement_import=imp).order_by("paid_at", "id")
        )
        settlements_book(receipts, payments)
    codes = [r.receipt for r in mine]
    if codes and reconcile:
        reconcile_later(trigger="receipt", codes=codes)
    return codes
