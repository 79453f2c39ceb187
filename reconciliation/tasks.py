"""django-q2 entry points: thin wrappers over the services, safe to run twice."""

from reconciliation.services import matcher, receipts


def reconcile(trigger: str = "schedule", codes: list[str] | None = None) -> dict:
    """Run the matcher (scheduled every minute; queued after imports and new receipts)."""
    return matcher.claims_reconcile(trigger=trigger, codes=codes).counts


def statement_import_run(import_id: int) -> int:
    """Import a large previewed statement in the background."""
    return receipts.statement_import_run(import_id=import_id).rows_done
