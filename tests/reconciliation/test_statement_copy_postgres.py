"""The statement import on PostgreSQL: COPY into a staging table and set-based SQL
(reconciliation.services.statement_copy, ledger.books.post_till_receipts_set_based) record the
same receipts, entries and postings as the ORM path, gapless after the counter, once."""

import datetime as dt
import io
from decimal import Decimal
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from console.models import AuditEvent
from ledger import books
from ledger.books.closing import books_day_close
from ledger.models import EntryCounter, EntryKind, JournalEntry, Posting
from reconciliation.models import ImportStatus, ReceiptSource, SettlementState, StatementImport, TillReceipt
from reconciliation.services import statement_copy
from reconciliation.services import statements as svc

from .factories import receipt
from .test_stk_settlement import stk_paid

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db]
D = Decimal
NAIROBI = ZoneInfo("Africa/Nairobi")
HEAD = (
    "Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,Withdrawn,Balance,"
    "Balance Confirmed,Reason Type,Other Party Info,Linked Transaction ID,A/C No.\n"
)
PAID = "{code},10-03-2026 {at},,Merchant Payment from 0712***{tail} - CUSTOMER {n},Completed,{amount},,,TRUE,"
PAID += "Customer Merchant Payment,6944804 - TILLBOOK DATA,,\n"
CHARGE = "{code},10-03-2026 {at},,Pay merchant Charge,Completed,,1.25,,TRUE,Pay Merchant Charge,,,\n"
WITHDRAWAL = (
    "UCA5HV4C6M,10-03-2026 12:30:00,,Business Buy Goods to 300300 - SUPPLIER LTD,Completed,,600.00,,TRUE,"
    "Business Buy Goods,300300 - SUPPLIER LTD,,\n"
)
KNOWN = "UCA0000003"  # recorded by a C2B confirmation before the statement came
STK = "UCA6KP2R8T"  # an STK payment's code: the statement row is its settlement


class Rollback(Exception):
    pass


def at(i: int) -> str:
    """A distinct completion time per row, 08:00:00 onwards (the ORM path orders by it alone)."""
    return f"{8 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}"


def statement(rows: int, *, stk: bool = False) -> bytes:
    """``rows`` paid-in rows (UCA0000000…, amounts 50.00, 51.00, …), a charge after every tenth, one
    withdrawal; with ``stk`` one more row paying STK's code at 11:31 (the STK payment was at 11:30)."""
    lines = []
    for i in range(rows):
        code = f"UCA{i:07d}"
        lines.append(
            PAID.format(code=code, at=at(i), tail=f"{i % 1000:03d}", n=i, amount=f"{50 + i % 97}.00")
        )
        if i % 10 == 0:
            lines.append(CHARGE.format(code=code, at=at(i)))
    if stk:
        lines.append(PAID.format(code=STK, at="11:31:00", tail="678", n="STK", amount="150.00"))
    return (HEAD + "".join(lines) + WITHDRAWAL).encode()


def import_file(data: bytes) -> StatementImport:
    imp = svc.statement_import_create(data=data, filename="statement.csv")
    return svc.statement_import_start(import_id=imp.pk, inline=True)


def counter() -> int:
    return EntryCounter.objects.get(name="journal").last


def books_commit_checks() -> None:
    """Fire the deferred PostgreSQL balance and has-postings triggers now, as a commit would."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def test_copy_path_records_books_and_numbers_every_new_receipt_once():
    books.entry_post(
        kind="adjustment", lines=[("mpesa_till", D("10.00")), ("unallocated_receipts", D("-10.00"))]
    )
    receipt(code=KNOWN, amount="53", paid_at=dt.datetime(2026, 3, 10, 8, 0, 3, tzinfo=NAIROBI))
    start = counter()
    rows = svc.CHUNK + 7  # two chunks
    with mock.patch.object(svc, "_insert_statement_rows_orm", side_effect=AssertionError("ORM path")):
        imp = import_file(statement(rows))

    assert imp.status == ImportStatus.DONE and (imp.rows_done, imp.rows_total) == (rows, rows)
    new_codes = [f"UCA{i:07d}" for i in range(rows) if i != 3]
    amounts = {f"UCA{i:07d}": D(f"{50 + i % 97}.00") for i in range(rows)}
    expected_amount = sum(amounts[c] for c in new_codes)
    assert (imp.counts["new"], imp.counts["known"], imp.counts["new_amount"]) == (
        rows - 1,
        1,
        str(expected_amount),
    )
    assert imp.counts["skipped"] == {"charge": rows // 10 + 1, "withdrawal": 1}

    mine = TillReceipt.objects.filter(statement_import=imp)
    assert sorted(mine.values_list("code", flat=True)) == new_codes
    assert TillReceipt.objects.get(code=KNOWN).source == ReceiptSource.C2B  # the known one stays as it was
    one = TillReceipt.objects.get(code="UCA0000012")
    assert (one.amount, one.source, one.payer_masked, one.payer_name, one.settlement, one.order_id) == (
        D("62.00"),
        ReceiptSource.STATEMENT,
        "0712***012",
        "CUSTOMER 12",
        "",
        None,
    )
    assert one.paid_at == dt.datetime(2026, 3, 10, 8, 0, 12, tzinfo=NAIROBI)
    assert one.raw["row"] == 16 and one.raw["details"].startswith("Merchant Payment from 0712***012")
    assert one.raw["reason_type"] == "Customer Merchant Payment"

    entries = list(JournalEntry.objects.filter(seq__gt=start).order_by("seq"))
    assert [e.seq for e in entries] == list(range(start + 1, start + rows))  # gapless, after the counter
    assert [e.number for e in entries] == [f"JE-{n:06d}" for n in range(start + 1, start + rows)]
    assert counter() == start + rows - 1
    assert [e.receipt_code for e in entries] == new_codes  # in the order the money moved
    e = entries[-1]
    code = new_codes[-1]
    assert (e.kind, e.memo, e.channel, e.idempotency_key, e.order_id, e.reason) == (
        EntryKind.TILL_RECEIPT,
        f"Till receipt {code}",
        "till",
        f"till_receipt:{code}",
        None,
        "",
    )
    assert e.value_at == e.posted_at == TillReceipt.objects.get(code=code).paid_at
    postings = list(
        Posting.objects.filter(entry__seq__gt=start)
        .order_by("id")
        .values_list("entry__seq", "account__key", "amount")
    )
    assert postings == [
        row
        for seq, code in zip(range(start + 1, start + rows), new_codes, strict=True)
        for row in ((seq, "mpesa_till", amounts[code]), (seq, "unallocated_receipts", -amounts[code]))
    ]
    books_commit_checks()
    call_command("check_books", stdout=io.StringIO())  # raises CommandError when the books are off

    events = AuditEvent.objects.count()
    again = import_file(statement(rows))
    assert (again.counts["new"], again.counts["known"], again.counts["new_amount"]) == (0, rows, "0.00")
    assert TillReceipt.objects.filter(statement_import=again).count() == 0
    assert counter() == start + rows - 1 and JournalEntry.objects.filter(seq__gt=start).count() == rows - 1
    assert AuditEvent.objects.count() == events + 2  # previewed and started, as before: no event per row


def snapshot() -> dict:
    """What an import wrote, without ids and creation times."""
    receipts = list(
        TillReceipt.objects.filter(source=ReceiptSource.STATEMENT)
        .order_by("id")
        .values_list(
            "code",
            "amount",
            "paid_at",
            "payer_masked",
            "payer_name",
            "raw",
            "settlement",
            "settlement_note",
            "order_id",
        )
    )
    entries = list(
        JournalEntry.objects.order_by("seq").values_list(
            "seq",
            "number",
            "kind",
            "posted_at",
            "value_at",
            "memo",
            "receipt_code",
            "channel",
            "order_id",
            "idempotency_key",
        )
    )
    postings = list(Posting.objects.order_by("id").values_list("entry__number", "account__key", "amount"))
    imp = StatementImport.objects.latest("id")
    audit = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    return {
        "receipts": receipts,
        "entries": entries,
        "postings": postings,
        "counts": (imp.status, imp.rows_done, imp.counts),
        "counter": counter(),
        "audit": audit,
    }


def test_copy_path_writes_what_the_orm_path_writes(bundles):
    """Known code, STK settlement, closed day (booked on the next open day), two chunks."""
    order = stk_paid(code=STK)
    receipt(code=KNOWN, amount="53", paid_at=dt.datetime(2026, 3, 10, 8, 0, 3, tzinfo=NAIROBI))
    books_day_close(day=dt.date(2026, 3, 10))
    data = statement(svc.CHUNK + 20, stk=True)

    with pytest.raises(Rollback), transaction.atomic():
        with mock.patch.object(svc, "_insert_statement_rows_orm", side_effect=AssertionError("ORM path")):
            import_file(data)
        copied = snapshot()
        raise Rollback
    with mock.patch.object(svc, "_insert_statement_rows", side_effect=svc._insert_statement_rows_orm):
        import_file(data)
    orm = snapshot()

    assert copied == orm
    settled = [r for r in copied["receipts"] if r[0] == STK]
    assert settled and settled[0][6] == SettlementState.SETTLED and settled[0][8] == order.pk
    booked = [e for e in copied["entries"] if e[6] == "UCA0000000"][0]
    assert booked[3] == dt.datetime(2026, 3, 11, tzinfo=NAIROBI)  # the 10th is closed: booked on the 11th
    assert booked[4] == dt.datetime(2026, 3, 10, 8, 0, 0, tzinfo=NAIROBI)  # its value date is the payment's
    books_commit_checks()


def test_entry_numbers_past_a_million_keep_their_digits():
    EntryCounter.objects.update_or_create(name="journal", defaults={"last": 999_998})
    import_file(statement(3))
    numbers = list(
        JournalEntry.objects.filter(kind=EntryKind.TILL_RECEIPT)
        .order_by("seq")
        .values_list("number", flat=True)
    )
    assert numbers == ["JE-999999", "JE-1000000", "JE-1000001"]
    assert counter() == 1_000_001


def test_a_chunk_that_fails_on_postgres_leaves_nothing_of_itself():
    real = statement_copy.statement_rows_copy
    calls = {"n": 0}

    def second_fails(rows, imp, **options):
        calls["n"] += 1
        real(rows, imp, **options)
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return []

    imp = svc.statement_import_create(data=statement(svc.CHUNK + 5), filename="statement.csv")
    with mock.patch.object(svc, "statement_rows_copy", side_effect=second_fails), pytest.raises(RuntimeError):
        svc.statement_import_start(import_id=imp.pk, inline=True)
    imp.refresh_from_db()
    assert imp.status == ImportStatus.FAILED and imp.rows_done == svc.CHUNK
    assert TillReceipt.objects.filter(statement_import=imp).count() == svc.CHUNK
    assert JournalEntry.objects.filter(kind=EntryKind.TILL_RECEIPT).count() == svc.CHUNK
    assert counter() == svc.CHUNK
    svc.statement_import_resume(import_id=imp.pk, inline=True)
    imp.refresh_from_db()
    assert imp.status == ImportStatus.DONE and imp.counts["new"] == svc.CHUNK + 5
    assert JournalEntry.objects.filter(kind=EntryKind.TILL_RECEIPT).count() == svc.CHUNK + 5
    books_commit_checks()


def test_chunks_on_postgres_follow_the_setting(settings):
    settings.STATEMENT_COPY_CHUNK = 400  # production takes 10,000 rows a chunk
    sizes = []
    real = svc._insert_statement_rows

    def insert(rows, imp):
        sizes.append(len(rows))
        return real(rows, imp)

    with mock.patch.object(svc, "_insert_statement_rows", side_effect=insert):
        imp = import_file(statement(1000))
    assert sizes == [400, 400, 200]
    assert imp.status == ImportStatus.DONE and (imp.rows_done, imp.counts["new"]) == (1000, 1000)
    seqs = list(
        JournalEntry.objects.filter(kind=EntryKind.TILL_RECEIPT).order_by("seq").values_list("seq", flat=True)
    )
    assert seqs == list(range(seqs[0], seqs[0] + 1000))
