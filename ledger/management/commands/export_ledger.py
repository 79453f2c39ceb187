"""Export postings for a Nairobi date range to a CSV or XLSX file, like the admin does."""

import datetime as dt
import sys

from django.core.management.base import BaseCommand, CommandError

from console.kernel.exceptions import DomainError
from ledger.books import exports


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD).")


class Command(BaseCommand):
    help = "Export ledger postings (inclusive Nairobi date range) to PATH as CSV or XLSX."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--from", dest="date_from", required=True, help="YYYY-MM-DD (Nairobi day)")
        parser.add_argument("--to", dest="date_to", required=True, help="YYYY-MM-DD, inclusive")
        parser.add_argument("--format", choices=exports.FORMATS, default="csv")
        parser.add_argument("--account", action="append", default=[], help="account key; repeatable")
        parser.add_argument("--channel", choices=["stk", "till"], default="")

    def handle(self, *args, path, date_from, date_to, format, account, channel, **options):
        try:
            filters = exports.export_filters(
                date_from=_date(date_from), date_to=_date(date_to), accounts=account, channel=channel
            )
            total = exports.export_count(filters)

            def progress(done):
                if options["verbosity"] > 1:
                    sys.stderr.write(f"\r{done:,} / {total:,}")

            written = exports.export_write(filters=filters, fmt=format, path=path, progress=progress)
        except DomainError as exc:
            raise CommandError(exc.message)
        self.stdout.write(f"Wrote {written:,} postings to {path}")
