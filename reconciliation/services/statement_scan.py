"""A statement read once, as a stream (statement_scan): the preview's counts, and the receipt
rows spooled to a temporary file so an import holds one chunk of rows at a time, not the file's."""

from __future__ import annotations

import pickle
import tempfile
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

from django.db import connection

from reconciliation.models import TillReceipt
from reconciliation.parsers import StatementFormatError, StatementRow, statement_rows_stream
from reconciliation.parsers.statement import DISPOSITION_RECEIPT

from .errors import ImportRefused

STATEMENT_HAS_ERRORS = "The statement has {count} bad row(s); nothing was saved. First: {first}"
LOOKUP_BATCH = 1000  # codes per look-up where no array parameter exists (SQLite)
SPOOL_ROWS = 2000  # receipt rows per pickled batch of a scan's spool


class StatementScan:
    """A statement read once, as a stream: the preview counts and, kept, its receipt rows spooled
    to a temporary file in pickled batches, so an import holds one chunk of rows at a time, not
    the file's. Use as a context manager (the spool is deleted on exit)."""

    def __init__(self) -> None:
        self.preview: dict = {}
        self.receipts_total = 0
        self._spool = None

    def __enter__(self) -> StatementScan:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def receipt_chunks(self, *, start: int, size: int) -> Iterator[tuple[int, list[StatementRow]]]:
        """The receipt rows after the first ``start``, ``size`` at a time, each with how many
        receipt rows the file has up to the chunk's end (the import's rows_done once it commits)."""
        done, chunk = start, []
        for row in self._receipts(skip=start):
            chunk.append(row)
            if len(chunk) == size:
                done += len(chunk)
                yield done, chunk
                chunk = []
        if chunk:
            yield done + len(chunk), chunk

    def _receipts(self, *, skip: int) -> Iterator[StatementRow]:
        self._spool.seek(0)
        seen = 0
        while seen < self.receipts_total:
            batch = pickle.load(self._spool)  # noqa: S301 (our own temporary file, written above)
            if seen + len(batch) > skip:
                yield from batch[max(skip - seen, 0) :]
            seen += len(batch)


def statement_scan(
    *, data: bytes, filename: str, preview: bool = False, keep_rows: bool = False
) -> StatementScan:
    """Read a statement once, row by row, refusing files with any bad row (ImportRefused: nothing
    saved). ``preview``: the counts statement_preview gives (known codes looked up batch by batch);
    ``keep_rows``: its receipt rows spooled for StatementScan.receipt_chunks."""
    try:
        stream = statement_rows_stream(data, filename)
    except StatementFormatError as exc:
        raise ImportRefused(str(exc))
    scan = StatementScan()
    if keep_rows:
        scan._spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the scan's close)
    skipped: Counter = Counter()
    known, new_amount = 0, Decimal("0.00")
    batch: list[StatementRow] = []

    def flush() -> None:
        nonlocal known, new_amount
        if preview and not stream.errors:  # a file refused anyway needs no look-ups
            found = known_codes([r.receipt for r in batch])
            known += len(found)
            new_amount += sum((r.paid_in for r in batch if r.receipt not in found), Decimal("0.00"))
        if scan._spool is not None:
            pickle.dump(batch, scan._spool, protocol=pickle.HIGHEST_PROTOCOL)
        batch.clear()

    try:
        for row in stream:
            if row.disposition != DISPOSITION_RECEIPT:
                skipped[row.skip_reason] += 1
                continue
            batch.append(row)
            scan.receipts_total += 1
            if len(batch) == SPOOL_ROWS:
                flush()
        if batch:
            flush()
        if stream.errors:
            first = stream.errors[0]
            raise ImportRefused(
                STATEMENT_HAS_ERRORS.format(
                    count=len(stream.errors), first=f"row {first.row_number}, {first.column}: {first.message}"
                )
            )
    except BaseException:
        scan.close()
        raise
    total = scan.receipts_total
    scan.preview = {
        "rows_total": total,
        "new": total - known,
        "known": known,
        "new_amount": str(new_amount),
        "skipped": dict(skipped),
        "errors": [],
        "warnings": list(stream.warnings),
    }
    return scan


def known_codes(codes: list[str]) -> set[str]:
    """Which of ``codes`` are till receipts already."""
    if connection.vendor == "postgresql":  # one array parameter, not a placeholder per code
        with connection.cursor() as cursor:
            table = TillReceipt._meta.db_table
            cursor.execute(f"SELECT code FROM {table} WHERE code = ANY(%s::text[])", [list(codes)])  # noqa: S608
            return {code for (code,) in cursor.fetchall()}
    known: set[str] = set()
    for i in range(0, len(codes), LOOKUP_BATCH):
        known.update(
            TillReceipt.objects.filter(code__in=codes[i : i + LOOKUP_BATCH]).values_list("code", flat=True)
        )
    return known
