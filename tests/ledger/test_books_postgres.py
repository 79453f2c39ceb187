"""PostgreSQL itself refuses changes to posted books and unbalanced entries (migration 0003)."""

import io
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ledger import books
from ledger.models import Account, JournalEntry, Posting

pytestmark = [
    pytest.mark.postgres_only,
    # Real commits (the balance check is deferred to commit); the chart is restored afterwards.
    pytest.mark.django_db(transaction=True),
]

INSERT_ENTRY = (
    "INSERT INTO ledger_journalentry (seq, number, kind, posted_at, memo, reason, receipt_code, channel)"
    " VALUES (%s, %s, 'adjustment', %s, '', '', '', '')"
)


@pytest.fixture
def entry():
    return books.entry_post(
        kind="adjustment",
        lines=[("mpesa_till", Decimal("50.00")), ("unallocated_receipts", Decimal("-50.00"))],
    )


def _sql(statement, params=()):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_posting SET amount = amount * 2 WHERE entry_id = %s",
        "DELETE FROM ledger_posting WHERE entry_id = %s",
        "UPDATE ledger_journalentry SET memo = 'edited' WHERE id = %s",
        "DELETE FROM ledger_journalentry WHERE id = %s",
    ],
)
def test_raw_sql_cannot_change_or_delete_posted_rows(entry, statement):
    with pytest.raises(IntegrityError, match="post a reversal"):
        _sql(statement, [entry.pk])
    assert entry.postings.count() == 2
    assert JournalEntry.objects.get(pk=entry.pk).memo == entry.memo


def test_an_unbalanced_entry_inserted_with_raw_sql_fails_at_commit():
    till = Account.objects.get(key="mpesa_till")
    with (
        pytest.raises(IntegrityError, match="unbalanced"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(INSERT_ENTRY + " RETURNING id", [999, "JE-000999", timezone.now()])
        entry_id = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO ledger_posting (entry_id, account_id, amount) VALUES (%s, %s, 10)",
            [entry_id, till.pk],
        )
    assert not JournalEntry.objects.filter(seq=999).exists()
    assert not Posting.objects.exists()


def test_an_entry_without_postings_fails_at_commit():
    with pytest.raises(IntegrityError, match="no postings"):
        _sql(INSERT_ENTRY, [998, "JE-000998", timezone.now()])
    assert not JournalEntry.objects.filter(seq=998).exists()


def test_balanced_entries_from_the_service_commit(entry):
    assert JournalEntry.objects.filter(pk=entry.pk).exists()
    assert sum(p.amount for p in entry.postings.all()) == 0


def _entries(cursor, seqs):
    """Raw entries (no postings yet) numbered seqs; their ids in order."""
    ids = []
    for seq in seqs:
        cursor.execute(INSERT_ENTRY + " RETURNING id", [seq, f"JE-{seq:06d}", timezone.now()])
        ids.append(cursor.fetchone()[0])
    return ids


def test_one_unbalanced_entry_among_many_set_based_postings_fails_the_whole_commit():
    # The statement-level check (migration 0010) sees every entry a multi-row INSERT touched.
    till, unallocated = (Account.objects.get(key=k).pk for k in ("mpesa_till", "unallocated_receipts"))
    with (
        pytest.raises(IntegrityError, match="unbalanced by 1.00"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        ids = _entries(cursor, range(900, 950))
        cursor.execute(
            "INSERT INTO ledger_posting (entry_id, account_id, amount) "
            "SELECT e.id, a.account, a.sign * CASE WHEN e.id = %s AND a.sign = 1 THEN 11.00 ELSE 10.00 END "
            "FROM unnest(%s::bigint[]) AS e(id) CROSS JOIN (VALUES (%s, 1), (%s, -1)) AS a(account, sign)",
            [ids[17], ids, till, unallocated],
        )
    assert not JournalEntry.objects.filter(seq__gte=900).exists()
    assert not Posting.objects.exists()


def test_an_unbalanced_entry_copied_in_fails_at_commit():
    till = Account.objects.get(key="mpesa_till")
    with (
        pytest.raises(IntegrityError, match="unbalanced"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        (entry_id,) = _entries(cursor, [960])
        rows = io.StringIO(f"{entry_id}\t{till.pk}\t25.00\n")
        cursor.cursor.copy_expert("COPY ledger_posting (entry_id, account_id, amount) FROM STDIN", rows)
    assert not JournalEntry.objects.filter(seq=960).exists()


def test_an_entrys_postings_may_balance_across_statements_of_one_transaction():
    till, unallocated = (Account.objects.get(key=k).pk for k in ("mpesa_till", "unallocated_receipts"))
    with transaction.atomic(), connection.cursor() as cursor:
        (entry_id,) = _entries(cursor, [970])
        posting = "INSERT INTO ledger_posting (entry_id, account_id, amount) VALUES (%s, %s, %s)"
        cursor.execute(posting, [entry_id, till, Decimal("30.00")])
        cursor.execute(posting, [entry_id, unallocated, Decimal("-30.00")])
    assert sum(p.amount for p in Posting.objects.filter(entry_id=entry_id)) == 0


def test_the_set_based_till_receipt_posting_commits_balanced_entries():
    paid = timezone.now()
    receipts = [(f"UCB{i:07d}", Decimal("99.00"), paid) for i in range(30)]
    assert books.post_till_receipts_set_based(receipts) == 30
    assert JournalEntry.objects.filter(receipt_code__startswith="UCB").count() == 30
    assert books.books_check() == []
