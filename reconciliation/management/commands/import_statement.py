from django.core.management.base import BaseCommand, CommandError

from console.kernel.uploads import UploadRefused, limit, read_limited
from reconciliation.services.errors import ImportRefused
from reconciliation.services.receipts import statement_import_now, statement_preview


class Command(BaseCommand):
    help = "Import an M-PESA Org portal statement (CSV/XLSX): new till receipts are booked and matched."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what would be imported; save nothing."
        )

    def handle(self, path, dry_run=False, **options):
        try:
            data = read_limited(path, limit("UPLOAD_STATEMENT_MAX_BYTES"), what="statement file")
        except UploadRefused as exc:
            raise CommandError(exc.message)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc}")
        name = path.rsplit("/", 1)[-1]
        try:
            if dry_run:
                preview = statement_preview(data=data, filename=name)
                self._refuse_bad_rows(preview)
                self._print(preview, "would import")
                return
            try:
                # The command runs the import itself (no worker needed), with the same chunked
                # service, from the one parse that also made the preview counts.
                imp = statement_import_now(data=data, filename=name)
            except ImportRefused:
                self._refuse_bad_rows(statement_preview(data=data, filename=name))  # names each bad row
                raise
        except ImportRefused as exc:
            raise CommandError(exc.message)
        self._print(imp.counts, "imported")

    def _refuse_bad_rows(self, preview):
        if preview["errors"]:
            for error in preview["errors"][:50]:
                self.stderr.write(f"row {error['row']}, {error['column']}: {error['message']}")
            raise CommandError(f"{len(preview['errors'])} bad row(s); nothing was saved.")

    def _print(self, counts, verb):
        skipped = counts.get("skipped") or {}
        self.stdout.write(
            f"{verb}: {counts.get('new', 0)} new, {counts.get('known', 0)} already known, "
            f"{sum(skipped.values())} skipped"
            + (" (" + ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items())) + ")" if skipped else "")
        )
