"""django-q2 entry points: thin wrappers over the services, safe to run twice."""

from reconciliation.services import claims, matcher, receipts, unknown_prompts


def reconcile(trigger: str = "schedule", codes: list[str] | None = None) -> dict:
    """Run the matcher (scheduled every minute; queued after imports and new receipts), after
    letting till receipts pay the STK prompts whose send never got an answer."""
    settled = unknown_prompts.unknown_prompts_settle()
    counts = matcher.claims_reconcile(trigger=trigger, codes=codes).counts
    return {**counts, **{f"unknown_prompt_{k}": v for k, v in settled.items() if v}}


def statement_import_run(import_id: int) -> int:
    """Import (or resume) a large statement in the background; does nothing unless this worker
    gets the import's lease, so a task queued twice never imports one statement twice at once."""
    return receipts.statement_import_run(import_id=import_id).rows_done


def whatsapp_import_run(import_id: int) -> str:
    """Import a queued WhatsApp chat export in the background (large files: never in a request)."""
    return claims.whatsapp_import_run(import_id=import_id).status
