"""PostgreSQL itself refuses changes to posted books and unbalanced entries (migration 0003)."""

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
