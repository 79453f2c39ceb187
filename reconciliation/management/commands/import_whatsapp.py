from django.core.management.base import BaseCommand, CommandError

from console.kernel.uploads import UploadRefused, limit, read_limited
from reconciliation.services.claims import whatsapp_import
from reconciliation.services.errors import ImportRefused
from reconciliation.services.matcher import claims_reconcile


class Command(BaseCommand):
    help = "Import a WhatsApp chat export (.txt or .zip): every message is kept, claims are matched."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--business-number", help="Our own WhatsApp number (its messages make no claim).")
        parser.add_argument("--business-name", help="How our own account is named in the export.")

    def handle(self, path, business_number=None, business_name=None, **options):
        try:
            data = read_limited(path, limit("UPLOAD_CHAT_MAX_BYTES"), what="chat export")
        except UploadRefused as exc:
            raise CommandError(exc.message)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc}")
        try:
            imp = whatsapp_import(
                data=data,
                filename=path.rsplit("/", 1)[-1],
                business_number=business_number,
                business_name=business_name,
            )
        except ImportRefused as exc:
            raise CommandError(exc.message)
        claims_reconcile(trigger="import")
        c = imp.counts
        self.stdout.write(
            f"{c['messages']} messages ({c['new_messages']} new, {c['known_messages']} already imported); "
            f"{c['claims_new']} new claims; {c['unparseable']} unparseable; {c['chatter']} chatter; "
            f"{c['system']} system; {c['media']} media; {c['from_business']} from the business"
        )
