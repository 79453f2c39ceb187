from django.core.management.base import BaseCommand

from console.schedules import schedules_setup


class Command(BaseCommand):
    help = "Create or update Tillbook's background schedules (idempotent)."

    def handle(self, *args, **options):
        for name in schedules_setup():
            self.stdout.write(f"schedule: {name}")
