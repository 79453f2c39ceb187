from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Prepare the database for this release (idempotent): migrate, the cache table, the role "
        "groups and the background schedules. Run once before starting web servers and workers."
    )

    def handle(self, *args, **options):
        verbosity = options["verbosity"]
        call_command("migrate", interactive=False, verbosity=verbosity)
        call_command("createcachetable", verbosity=verbosity)
        call_command("setup_roles", verbosity=verbosity)
        call_command("setup_schedules", verbosity=verbosity)
        self.stdout.write("release: database ready")
