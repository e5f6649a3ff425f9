"""``manage.py migrate`` in row mode: with row-level security on, as the owner role.

The application role may not create or alter tables, so migrations run on the ``owner`` alias
(``DATABASE_URL``); afterwards the application role gets its grants on whatever tables the
migrations made (``tenants.rls.ensure_app_role``), and tenant tables migrated while the setting was
off get their policies (``tenants.rls.reapply_if_missing``). Schema mode uses django-tenants'
command.
"""

from contextlib import contextmanager

from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS, connections

from tenants import cells, rls
from tenants.cellconfig import is_owner_alias, owner_alias


class Command(migrate.Command):
    help = migrate.Command.help + " With row-level security on: as the owner role (alias owner)."

    def handle(self, *args, **options):
        if not rls.enabled():
            return super().handle(*args, **options)
        if options["database"] == DEFAULT_DB_ALIAS:
            options["database"] = rls.OWNER
        elif options["database"] in cells.configured().values():  # a cell: as its owner
            options["database"] = owner_alias(options["database"])
        # Data migrations that ignore their schema editor's alias (django_tasks_db's RunPython
        # uses Model.objects) would run as the site's role, which may not touch new tables.
        with _default_is(connections[options["database"]]):
            super().handle(*args, **options)
        if is_owner_alias(options["database"]):
            if rls.reapply_if_missing(options["database"]) and options["verbosity"]:
                self.stdout.write("Row-level security put on tables migrated without it.")
            rls.ensure_app_role(options["database"])


@contextmanager
def _default_is(connection):
    """The ``default`` alias means ``connection`` for the block (this thread)."""
    site = connections[DEFAULT_DB_ALIAS]
    connections[DEFAULT_DB_ALIAS] = connection
    try:
        yield
    finally:
        connections[DEFAULT_DB_ALIAS] = site
