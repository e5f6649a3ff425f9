import psycopg
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from psycopg import sql

from tenants import postgres


class Command(BaseCommand):
    help = (
        "Create the configured PostgreSQL database if it does not exist yet (nothing to do on "
        "SQLite, which creates its file itself)."
    )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            return
        name = connection.settings_dict["NAME"]
        try:
            if postgres.database_exists(name):
                return
            with postgres.connect(database="postgres") as admin:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            self.stdout.write(f"Created database {name}.")
        except psycopg.OperationalError as error:
            raise CommandError(
                f"Cannot reach PostgreSQL for database {name!r}: {error}".strip()
            ) from error
