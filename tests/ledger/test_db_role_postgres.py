"""The web and worker processes can run as a role that cannot change or remove posted books.

The role comes from `manage.py db_app_role` (console.dbroles). As that role (SET ROLE on the test
connection) the books post and commit an entry, while UPDATE, DELETE and TRUNCATE on the entry
and posting tables are refused by PostgreSQL's privileges, before any trigger runs.
"""

import os
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import ProgrammingError, connection, transaction

from console.dbroles import APPEND_ONLY_TABLES
from ledger import books
from ledger.models import JournalEntry, Posting

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

ROLE = f"tillbook_app_test_{os.getpid()}"


@pytest.fixture
def app_role():
    call_command("db_app_role", ROLE, execute=True, stdout=open(os.devnull, "w"))  # noqa: SIM115
    try:
        yield ROLE
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
            cursor.execute(f"DROP OWNED BY {ROLE}")  # its grants
            cursor.execute(f"DROP ROLE {ROLE}")


def _as_role(sql):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)


def test_app_role_posts_entries_but_cannot_update_delete_or_truncate_the_books(app_role):
    with connection.cursor() as cursor:
        cursor.execute(f"SET ROLE {app_role}")
        cursor.execute("SELECT current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)")
        assert cursor.fetchone() == (app_role, False)

    entry = books.entry_post(
        kind="adjustment",
        lines=[("mpesa_till", Decimal("75.00")), ("unallocated_receipts", Decimal("-75.00"))],
        memo="posted by the application role",
    )  # committed: the deferred balance check ran as the role too
    assert JournalEntry.objects.filter(pk=entry.pk).exists() and entry.postings.count() == 2

    for table in APPEND_ONLY_TABLES:
        key = "id" if table == "ledger_journalentry" else "entry_id"
        for statement in (
            f"UPDATE {table} SET {key} = {key} WHERE {key} = {entry.pk}",
            f"DELETE FROM {table} WHERE {key} = {entry.pk}",
            f"TRUNCATE {table} CASCADE",
        ):
            with pytest.raises(ProgrammingError, match=f"permission denied for table {table}"):
                _as_role(statement)

    # Other tables stay writable: the worker and the admin update orders, claims, callbacks…
    _as_role("UPDATE ledger_entrycounter SET last = last WHERE name = 'journal'")
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
    assert JournalEntry.objects.filter(pk=entry.pk).count() == 1
    assert Posting.objects.filter(entry_id=entry.pk).count() == 2

    # Without --execute the command prints the SQL for the DBA to review.
    out = StringIO()
    call_command("db_app_role", "tillbook_app", stdout=out)
    sql = out.getvalue()
    assert 'REVOKE UPDATE, DELETE, TRUNCATE ON "ledger_posting" FROM "tillbook_app";' in sql
    assert "IF NOT EXISTS" in sql and "PASSWORD" not in sql
