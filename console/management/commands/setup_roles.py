from django.core.management.base import BaseCommand

from console.roles import roles_setup


class Command(BaseCommand):
    help = "Create or update the Support agent, Finance and Catalogue manager groups (idempotent)."

    def handle(self, *args, **options):
        for role, count in roles_setup().items():
            self.stdout.write(f"{role}: {count} permissions")
