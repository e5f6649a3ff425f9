from django.core.management.base import BaseCommand, CommandError

from tenants.conf import schema_mode
from tenants.provisioning import schema_factory


class Command(BaseCommand):
    help = (
        "Schema mode, after `migrate` on each deploy (and from cron if you like): build the "
        "template schema for the current migrations, fill the pool of spare tenant schemas to "
        "TENANCY_SCHEMA_POOL_SIZE, and drop templates and spares left by older code."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--spares",
            type=int,
            default=None,
            help="How many spare schemas to keep ready (default: TENANCY_SCHEMA_POOL_SIZE).",
        )
        parser.add_argument(
            "--keep-stale",
            action="store_true",
            help="Leave templates and spares of other code versions alone (rolling deploys).",
        )

    def handle(self, *args, spares=None, keep_stale=False, **options):
        if not schema_mode():
            raise CommandError("Tenant schemas exist in schema mode only (TENANCY_MODE=schema).")
        if spares is not None and spares < 0:
            raise CommandError("--spares cannot be negative.")
        from tenants.cellconfig import alias_for_cell
        from tenants.cells import cell_names

        for cell in cell_names():
            using = alias_for_cell(cell)
            report = schema_factory.prepare(spares=spares, drop_stale=not keep_stale, using=using)
            where = f"[{cell}] " if len(cell_names()) > 1 else ""
            self.stdout.write(
                f"{where}template {report['template']} "
                f"({report['statements']} statements per new schema)"
            )
            for name in report["dropped"]:
                self.stdout.write(f"{where}dropped  {name} (older code)")
            self.stdout.write(
                self.style.SUCCESS(
                    f"{where}spares   {report['spares_ready']} ready "
                    f"({report['spares_created']} made now)"
                )
            )
