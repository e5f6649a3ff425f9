import psycopg
from django.core.management.base import BaseCommand, CommandError
from django.db import connection


class Command(BaseCommand):
    help = (
        "Create the configured PostgreSQL database if it does not exist yet (nothing to do on "
        "SQLite, which creates its file itself)."
    )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            return
        params = connection.get_connection_params()
        name = connection.settings_dict["NAME"]
        params["dbname"] = "postgres"
        try:
            with psycopg.connect(**params, autocommit=True) as admin:
                exists = admin.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", [name]
                ).fetchone()
                if not exists:
                    admin.execute(
                        psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name))
                    )
                    self.stdout.write(f"Created database {name}.")
        except psycopg.OperationalError as error:
            raise CommandError(
                f"Cannot reach PostgreSQL for database {name!r}: {error}".strip()
            ) from error
