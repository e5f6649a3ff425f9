"""``manage.py migrate`` in row mode: with row-level security on, as the owner role.

The application role may not create or alter tables, so migrations run on the ``owner`` alias
(``DATABASE_URL``); afterwards the application role gets its grants on whatever tables the
migrations made (``tenants.rls.ensure_app_role``), and tenant tables migrated while the setting was
off get their policies (``tenants.rls.reapply_if_missing``). Schema mode uses django-tenants'
command.
"""

from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS

from tenants import rls


class Command(migrate.Command):
    help = migrate.Command.help + " With row-level security on: as the owner role (alias owner)."

    def handle(self, *args, **options):
        if rls.enabled() and options["database"] == DEFAULT_DB_ALIAS:
            options["database"] = rls.OWNER
        super().handle(*args, **options)
        if rls.enabled() and options["database"] == rls.OWNER:
            if rls.reapply_if_missing(rls.OWNER) and options["verbosity"]:
                self.stdout.write("Row-level security put on tables migrated without it.")
            rls.ensure_app_role(rls.OWNER)
