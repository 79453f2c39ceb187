import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError

from reconciliation.services.close import day_figures


class Command(BaseCommand):
    help = "Compare a Nairobi day's till paid-in, books and delivered bundles. Exit 1 when they differ."

    def add_arguments(self, parser):
        parser.add_argument("day", help="YYYY-MM-DD")
        parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")

    def handle(self, day, json=False, **options):
        try:
            when = dt.date.fromisoformat(day)
        except ValueError:
            raise CommandError(f"{day!r} is not a date; use YYYY-MM-DD.")
        figures = day_figures(day=when)
        if json:
            self.stdout.write(_json(figures))
        else:
            self.stdout.write(
                f"{figures['day']}: paid in {figures['paid_in']} ({figures['receipts']} receipts), "
                f"books {figures['books_till_movement']}, delivered {figures['delivered']} "
                f"({figures['orders_delivered']} orders)"
            )
            for row in figures["after_close"]:
                line = f"AFTER CLOSE {row['entry']} {row['kind']} {row['receipt']} booked {row['booked']}"
                self.stdout.write(line)
            for diff in figures["differences"]:
                self.stdout.write(f"DIFFERENCE {diff['check']}: {diff['difference']}")
                for key, rows in diff.items():
                    if isinstance(rows, list) and rows:
                        self.stdout.write(f"  {key}: {_json(rows)}")
            pending = figures.get("delivery_pending") or {}
            if pending.get("count"):
                self.stdout.write(f"PENDING {pending['count']} paid, delivery pending: {pending['amount']}")
        if not figures["balanced"]:
            raise SystemExit(1)
        self.stdout.write("balanced")


def _json(value):
    return json.dumps(value, default=str)
