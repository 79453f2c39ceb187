"""The database role the web and worker processes run as: least privilege for the books.

Migrations run as the owner of the schema. The application role (``manage.py db_app_role``)
may read and write every table except the posted books: on ``ledger_journalentry`` and
``ledger_posting`` it may only SELECT and INSERT. A correction is a reversing entry (ledger.books),
so the application never needs to change a posted row; with these grants a bug, an injected
query or a stolen application password cannot either. The migration 0003 triggers refuse such
changes too; the grants hold even if a trigger is dropped, and TRUNCATE fires no row trigger.

The statements are idempotent: run the command again after every ``migrate`` so that new tables
are granted (and new append-only tables listed here are revoked).
"""

from __future__ import annotations

from django.db import connection

# Posted books: insert and read only, never changed, deleted or truncated.
APPEND_ONLY_TABLES = ("ledger_journalentry", "ledger_posting")
NO_CHANGE = "UPDATE, DELETE, TRUNCATE"


def _ident(name: str) -> str:
    return connection.ops.quote_name(name)


def app_role_sql(role: str, *, password: str | None = None, database: str | None = None) -> list[str]:
    """The statements that create (or update) ``role`` and grant it exactly what the app needs."""
    r = _ident(role)
    login = f"LOGIN PASSWORD {_literal(password)}" if password else "NOLOGIN"
    statements = [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {_literal(role)}) "
        f"THEN CREATE ROLE {r}; END IF; END $$",
        f"ALTER ROLE {r} {login} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS",
    ]
    if database:
        statements.append(f"GRANT CONNECT ON DATABASE {_ident(database)} TO {r}")
    statements += [
        f"GRANT USAGE ON SCHEMA public TO {r}",
        f"REVOKE CREATE ON SCHEMA public FROM {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}",
    ]
    statements += [f"REVOKE {NO_CHANGE} ON {_ident(table)} FROM {r}" for table in APPEND_ONLY_TABLES]
    return statements


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
