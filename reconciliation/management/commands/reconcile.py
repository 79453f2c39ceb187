from django.core.management.base import BaseCommand

from reconciliation.services.matcher import claims_reconcile


class Command(BaseCommand):
    help = "Match open claims against till receipts once."

    def handle(self, **options):
        run = claims_reconcile(trigger="manual")
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(run.counts.items())) or "nothing to do"
        self.stdout.write(f"Run #{run.pk} in {run.duration_ms} ms: {counts}")
