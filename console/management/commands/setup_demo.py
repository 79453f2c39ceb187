"""Demo set-up for a laptop: roles, schedules, the catalogue, a day of demo data and four demo logins.

Refuses to run when DEBUG is off: demo passwords never reach production.
"""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from catalog.models import Bundle
from console.roles import CATALOGUE_MANAGER, FINANCE, SUPPORT_AGENT, roles_setup
from console.schedules import schedules_setup

DEMO_USERS = [("agent", SUPPORT_AGENT), ("finance", FINANCE), ("manager", CATALOGUE_MANAGER), ("admin", None)]


class Command(BaseCommand):
    help = "Load the catalogue and create demo logins (DEBUG only). Passwords are printed once."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("setup_demo only runs with DEBUG on; it creates demo logins.")
        roles_setup()
        schedules_setup()
        if not Bundle.objects.exists():
            call_command("loaddata", "fixtures/bundles.json", verbosity=0)
            self.stdout.write("Loaded the bundle catalogue.")
        User = get_user_model()
        created = []
        for username, role in DEMO_USERS:
            if User.objects.filter(username=username).exists():
                continue
            password = secrets.token_urlsafe(9)
            if role is None:
                User.objects.create_superuser(username=username, password=password, email="")
            else:
                user = User.objects.create_user(username=username, password=password, is_staff=True)
                user.groups.add(Group.objects.get(name=role))
            created.append((username, role or "Superuser", password))
        from console.demo import demo_data_load

        loaded = demo_data_load()
        if loaded:
            self.stdout.write(
                f"Loaded demo data: {loaded['receipts']} till receipts, "
                f"{loaded['messages']} WhatsApp messages, "
                f"{loaded['stk_orders']} STK orders ({loaded['delivered']} delivered)."
            )
        if created:
            self.stdout.write(self.style.SUCCESS("Demo logins (shown once; change them in the admin):"))
            for username, role, password in created:
                self.stdout.write(f"  {username:<8} {password:<14} {role}")
        else:
            self.stdout.write("Demo logins already exist (passwords were printed at first set-up).")
