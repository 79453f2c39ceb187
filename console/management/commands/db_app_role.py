import os

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from console.dbroles import APPEND_ONLY_TABLES, app_role_sql


class Command(BaseCommand):
    help = (
        "Create or update the PostgreSQL role the web and worker processes run as: every table "
        f"readable and writable except {', '.join(APPEND_ONLY_TABLES)} (SELECT and INSERT only). "
        "Run as the database owner after every migrate. Prints the SQL unless --execute is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("role", help="role name, e.g. tillbook_app")
        parser.add_argument(
            "--password-env",
            metavar="VAR",
            help="give the role LOGIN with the password read from this environment variable",
        )
        parser.add_argument("--execute", action="store_true", help="run the statements (as the owner)")

    def handle(self, *args, role, password_env=None, execute=False, **options):
        if connection.vendor != "postgresql":
            raise CommandError("Database roles are a PostgreSQL matter; DATABASE_URL is not PostgreSQL.")
        password = None
        if password_env:
            password = os.environ.get(password_env)
            if not password:
                raise CommandError(f"${password_env} is empty.")
        statements = app_role_sql(role, password=password, database=connection.settings_dict["NAME"])
        if not execute:
            for statement in statements:
                self.stdout.write(statement + ";")
            return
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        self.stdout.write(
            f"Role {role} granted; no UPDATE, DELETE or TRUNCATE on {', '.join(APPEND_ONLY_TABLES)}."
        )
