"""Print the trial balance and check the books' invariants; exit 1 if any does not hold."""

from django.core.management.base import BaseCommand, CommandError

from ledger.books import books_check
from ledger.books.selectors import trial_balance


class Command(BaseCommand):
    help = "Print the trial balance and check the books (exit status 1 when something is off)."

    def handle(self, *args, **options):
        tb = trial_balance()
        self.stdout.write(f"Trial balance as of {tb.as_of:%Y-%m-%d} (Africa/Nairobi), KES")
        self.stdout.write(f"{'code':<6} {'account':<28} {'debit':>16} {'credit':>16}")
        for row in tb.rows:
            debit = f"{row.debit:,.2f}" if row.debit is not None else ""
            credit = f"{row.credit:,.2f}" if row.credit is not None else ""
            self.stdout.write(f"{row.account.code:<6} {row.account.name:<28} {debit:>16} {credit:>16}")
        self.stdout.write(f"{'':<6} {'Total':<28} {tb.total_debit:>16,.2f} {tb.total_credit:>16,.2f}")

        problems = books_check()
        if problems:
            for problem in problems:
                self.stdout.write(self.style.ERROR(f"  ✗ {problem}"))
            raise CommandError(f"{len(problems)} problem(s) in the books.", returncode=1)
        self.stdout.write(self.style.SUCCESS("Books check: all invariants hold."))
