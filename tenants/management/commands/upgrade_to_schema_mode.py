"""manage.py upgrade_to_schema_mode --source URL: a row-mode site becomes a schema per tenant."""

from __future__ import annotations

import time

from django.apps import apps
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from tenants import postgres
from tenants.conf import public_schema, schema_mode
from tenants.management.actions import add_jobs_argument
from tenants.models import TenantOwnedModel
from tenants.operations import fleet, upgrade
from tenants.operations.progress import FleetProgress, console_for, print_table


class Command(BaseCommand):
    help = (
        "Copy a row-mode database (--source: SQLite or PostgreSQL URL, opened read-only) into "
        "the configured schema-mode PostgreSQL database: every tenant becomes a schema with "
        "its rows, members and their users; the default tenant, tenants, domains and platform "
        "users go to public. Ends by verifying row counts and checksums per schema and table "
        "against the source. Safe to interrupt and rerun: each schema is written whole or not "
        "at all, and a rerun does what is left. Stop writes to the source while it runs."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--source",
            required=True,
            metavar="DATABASE_URL",
            help="The row-mode database, e.g. sqlite:///db.sqlite3 or postgres://host/name.",
        )
        add_jobs_argument(parser, "Tenant schemas written at once")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would be copied where; write nothing.",
        )

    def handle(self, *args, source, dry_run, jobs, verbosity, **options):
        self.verbosity = verbosity
        if not schema_mode():
            raise CommandError(
                "Run this in schema mode, against the new database: TENANCY_MODE=schema "
                "DATABASE_URL=postgres://.../<new database> manage.py upgrade_to_schema_mode "
                "--source <row-mode database URL>"
            )
        if jobs < 1:
            raise CommandError("--jobs must be at least 1.")
        console = console_for(self.stdout)
        started = time.perf_counter()
        try:
            upgrade.Source(source).close()  # a bad source is reported before the target is touched
            exists = self._prepare_target(dry_run)
            with upgrade.Upgrade(source, target_exists=exists) as job:
                job.prepare(dry_run=dry_run)
                if dry_run:
                    self._report(console, job, dry_run=True)
                    return
                mismatches = self._write_and_verify(console, job, jobs)
        except upgrade.UpgradeError as error:
            raise CommandError(str(error)) from error
        except KeyboardInterrupt:
            raise CommandError(
                "Interrupted. Schemas written so far are complete; rerun the same command to "
                "go on.",
                returncode=130,
            ) from None
        if mismatches:
            self._verification_failed(console, mismatches)
        tables = sum(len(job.plan.rows[s]) for s in job.plan.schemas())
        self.stdout.write(
            self.style.SUCCESS(
                f"Upgraded and verified: {len(job.plan.schemas())} schemas, {tables} tables, "
                f"row counts and checksums equal to the source "
                f"({time.perf_counter() - started:.1f}s)."
            )
        )

    def _prepare_target(self, dry_run: bool) -> bool:
        """Create and migrate the target database (a dry run only looks); whether it exists."""
        if not dry_run:
            call_command("ensure_database", verbosity=self.verbosity)
            if fleet.public_needs_migrating():
                self.stdout.write("Migrating the target's public schema")
                fleet.run_django_executor(public_schema())
            return True
        if _database_exists():
            return True
        name = connection.settings_dict["NAME"]
        self.stdout.write(f"The target database {name} does not exist yet; it would be created.")
        return False

    def _write_and_verify(self, console, job, jobs: int) -> list:
        target = connection.settings_dict["NAME"]
        self.stdout.write(
            f"Upgrading {len(job.plan.schemas())} schemas into {target} "
            f"({len(job.done)} done before)"
        )
        progress = FleetProgress(console, len(job.todo), "schemas", verbosity=self.verbosity)
        with progress:
            job.write(lambda s, e: progress.advance(s, e is None, str(e or "")), jobs=jobs)
        mismatches = job.verify()
        self._report(console, job, dry_run=False)
        return mismatches

    def _verification_failed(self, console, mismatches):
        print_table(
            console,
            "VERIFICATION FAILED",
            ["Schema", "Table", "Source rows", "Target rows", "What differs"],
            [[m.schema, m.table, m.expected_rows, m.actual_rows, m.detail] for m in mismatches],
        )
        raise CommandError(
            f"{len(mismatches)} tables differ from the source (listed above). If the source "
            "changed during the upgrade, stop writes to it and upgrade into a new database."
        )

    def _report(self, console, job, *, dry_run):
        plan = job.plan
        owned = [
            m._meta.db_table
            for m in apps.get_models()
            if issubclass(m, TenantOwnedModel) and m._meta.db_table != "accounts_membership"
        ]
        slug_of = {t["schema"]: t["slug"] for t in plan.tenants}
        rows = []
        for schema in plan.schemas():
            counts = plan.rows[schema]
            new = "to write" if dry_run else "written"
            state = "done before" if schema in job.done else new
            rows.append(
                [
                    schema,
                    slug_of.get(schema, "-"),
                    len(counts.get("auth_user", [])),
                    len(counts.get("accounts_membership", [])),
                    sum(len(counts.get(t, [])) for t in owned),
                    sum(len(r) for r in counts.values()),
                    state,
                ]
            )
        if dry_run or self.verbosity >= 2 or len(rows) <= 20:
            print_table(
                console,
                f"{'Would copy' if dry_run else 'Copied'}: {len(rows)} schemas",
                ["Schema", "Tenant", "Users", "Memberships", "Other rows", "All rows", "State"],
                rows,
            )
        for note in plan.notes:
            self.stdout.write(f"note: {note}")
        if dry_run:
            self.stdout.write(
                f"Dry run: nothing was written. {len(job.todo)} of {len(rows)} schemas and "
                f"{sum(r[5] for r in rows if r[6] != 'done before')} rows would be copied."
            )


def _database_exists() -> bool:
    import psycopg

    try:
        return postgres.database_exists(connection.settings_dict["NAME"])
    except psycopg.OperationalError as error:
        raise upgrade.UpgradeError(f"Cannot reach the target's server: {error}") from error
