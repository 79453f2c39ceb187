from django.core.management.base import BaseCommand, CommandError

from reconciliation.services.exports import claims_export_write


class Command(BaseCommand):
    help = "Write every claim to a CSV: sender, code, recipient, status, reason, receipt, amount, bundle."

    def add_arguments(self, parser):
        parser.add_argument("path")

    def handle(self, path, **options):
        try:
            count = claims_export_write(path=path)
        except OSError as exc:
            raise CommandError(f"Cannot write {path}: {exc}")
        self.stdout.write(f"{count} claims written to {path}")
