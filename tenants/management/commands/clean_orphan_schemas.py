from django.core.management.base import BaseCommand, CommandError

from tenants.conf import schema_mode
from tenants.provisioning import schema_factory


class Command(BaseCommand):
    help = (
        "Schema mode: drop schemas that belong to no tenant (left by a crash of code that does "
        "not run in one transaction, a restore, or hand work). Spare and template schemas "
        "(names starting with '_') and PostgreSQL's own are never touched."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="List the orphan schemas, drop nothing."
        )

    def handle(self, *args, dry_run=False, **options):
        if not schema_mode():
            raise CommandError("Tenant schemas exist in schema mode only (TENANCY_MODE=schema).")
        from tenants.cellconfig import alias_for_cell
        from tenants.cells import cell_names

        orphans = [
            (alias_for_cell(cell), name)
            for cell in cell_names()
            for name in schema_factory.orphan_schemas(alias_for_cell(cell))
        ]
        if not orphans:
            self.stdout.write("No orphan schemas.")
            return
        for using, name in orphans:
            where = f" ({using})" if using != "default" else ""
            if dry_run:
                self.stdout.write(f"orphan   {name}{where}")
            else:
                schema_factory.drop_schema(name, using)
                self.stdout.write(f"dropped  {name}{where}")
        if dry_run:
            self.stdout.write(f"{len(orphans)} orphan schema(s); run without --dry-run to drop.")
