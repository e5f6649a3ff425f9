import psycopg
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from psycopg import sql

from tenants import cells, postgres, rls
from tenants.cellconfig import owner_alias


class Command(BaseCommand):
    help = (
        "Create the configured PostgreSQL database if it does not exist yet (nothing to do on "
        "SQLite, which creates its file itself). With row-level security on, also the "
        "application's role if missing (needs a role allowed to create roles, such as the "
        "local server's postgres). With TENANCY_CELLS, each cell's database too."
    )

    def handle(self, *args, **options):
        alias = rls.owner_alias()
        if connections[alias].vendor != "postgresql":
            return
        self._ensure(alias)
        if rls.enabled():
            name = connections[alias].settings_dict["NAME"]
            try:
                self._ensure_app_role(alias, name)
            except psycopg.OperationalError as error:
                raise CommandError(
                    f"Cannot reach PostgreSQL for database {name!r}: {error}".strip()
                ) from error
        for cell_alias in cells.configured().values():  # each cell's database (docs/cells.md)
            target = owner_alias(cell_alias) if rls.enabled() else cell_alias
            self._ensure(target)
            if rls.enabled():
                self._ensure_app_role(target, connections[target].settings_dict["NAME"])

    def _ensure(self, alias):
        name = connections[alias].settings_dict["NAME"]
        where = "" if alias in ("default", rls.OWNER) else f" (cell alias {alias})"
        try:
            if not postgres.database_exists(name, alias):
                with postgres.connect(alias, database="postgres") as admin:
                    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                self.stdout.write(f"Created database {name}{where}.")
        except psycopg.OperationalError as error:
            raise CommandError(
                f"Cannot reach PostgreSQL for database {name!r}{where}: {error}".strip()
            ) from error

    def _ensure_app_role(self, alias, name):
        role = rls.app_role()
        with postgres.connect(alias, database=name) as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                return
            try:
                conn.execute(rls.create_role_sql(role))
            except psycopg.errors.InsufficientPrivilege as error:
                raise CommandError(str(rls.RoleMissing(role))) from error
        self.stdout.write(f"Created the application's database role {role}.")
