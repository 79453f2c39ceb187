"""The books' commit-time checks, per INSERT statement instead of per row (PostgreSQL only).

Migration 0003 checked every posting and every entry with its own deferred trigger: a query per
row at commit, ~2 s per 20k-row statement chunk. The guarantee stays the same (at commit, every
entry inserted or given postings in the transaction has postings and balances, whoever inserts
and however: INSERT, INSERT … SELECT or COPY); what changes is the bookkeeping. A statement-level
trigger on each table writes the entry ids its statement touched (its transition table) as one
row of ledger_books_pending_check; a deferred constraint trigger on that row checks all those
entries in one query at commit and deletes the row. The functions run as their owner (SECURITY
DEFINER, a fixed search_path), so a role that may write that table still cannot skip a check:
the deferred event keeps the row as it was queued.
"""

from django.db import migrations

CHECKS = """
CREATE UNLOGGED TABLE ledger_books_pending_check (
    id bigserial PRIMARY KEY,
    entry_ids bigint[] NOT NULL
);

-- Every entry in ids has postings and they sum to zero; else the first offender is raised.
CREATE OR REPLACE FUNCTION ledger_check_entries(ids bigint[]) RETURNS void
    SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
DECLARE
    bad record;
BEGIN
    SELECT e.id, e.number, count(p.id) AS n, COALESCE(sum(p.amount), 0) AS total INTO bad
    FROM ledger_journalentry AS e LEFT JOIN ledger_posting AS p ON p.entry_id = e.id
    WHERE e.id = ANY (ids)
    GROUP BY e.id, e.number
    HAVING count(p.id) = 0 OR COALESCE(sum(p.amount), 0) <> 0
    ORDER BY e.id
    LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF bad.n = 0 THEN
        RAISE EXCEPTION 'ledger: journal entry % has no postings', bad.number
            USING ERRCODE = 'check_violation';
    END IF;
    RAISE EXCEPTION 'ledger: journal entry % is unbalanced by %', bad.id, bad.total
        USING ERRCODE = 'check_violation';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION ledger_queue_entry_check() RETURNS trigger
    SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
BEGIN
    INSERT INTO ledger_books_pending_check (entry_ids)
    SELECT array_agg(DISTINCT id) FROM inserted HAVING count(*) > 0;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION ledger_queue_posting_check() RETURNS trigger
    SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
BEGIN
    INSERT INTO ledger_books_pending_check (entry_ids)
    SELECT array_agg(DISTINCT entry_id) FROM inserted HAVING count(*) > 0;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- Checked at commit (deferred), when all of the transaction's postings are in.
CREATE OR REPLACE FUNCTION ledger_run_pending_check() RETURNS trigger
    SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
BEGIN
    PERFORM ledger_check_entries(NEW.entry_ids);
    DELETE FROM ledger_books_pending_check WHERE id = NEW.id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS ledger_posting_balanced ON ledger_posting;
DROP TRIGGER IF EXISTS ledger_journalentry_has_postings ON ledger_journalentry;

CREATE TRIGGER ledger_journalentry_queue_check AFTER INSERT ON ledger_journalentry
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_queue_entry_check();
CREATE TRIGGER ledger_posting_queue_check AFTER INSERT ON ledger_posting
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_queue_posting_check();
CREATE CONSTRAINT TRIGGER ledger_books_pending_checked AFTER INSERT ON ledger_books_pending_check
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_run_pending_check();
"""

# Back to migration 0003's per-row triggers (its functions are still there).
DROP_CHECKS = """
DROP TRIGGER IF EXISTS ledger_journalentry_queue_check ON ledger_journalentry;
DROP TRIGGER IF EXISTS ledger_posting_queue_check ON ledger_posting;
DROP TABLE IF EXISTS ledger_books_pending_check;
DROP FUNCTION IF EXISTS ledger_run_pending_check();
DROP FUNCTION IF EXISTS ledger_queue_posting_check();
DROP FUNCTION IF EXISTS ledger_queue_entry_check();
DROP FUNCTION IF EXISTS ledger_check_entries(bigint[]);

CREATE CONSTRAINT TRIGGER ledger_posting_balanced AFTER INSERT ON ledger_posting
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_balanced();
CREATE CONSTRAINT TRIGGER ledger_journalentry_has_postings AFTER INSERT ON ledger_journalentry
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_has_postings();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT quote_ident(current_schema())")
            schema = cursor.fetchone()[0]
        schema_editor.execute(sql.replace("{schema}", schema), params=None)  # no %-interpolation

    return run


class Migration(migrations.Migration):
    dependencies = [("ledger", "0009_matcher_changes")]
    operations = [migrations.RunPython(_on_postgresql(CHECKS), _on_postgresql(DROP_CHECKS))]
