"""manage.py tenants ACTION: everything an operator does to tenants, in both modes."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time

import psycopg
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, IntegrityError, transaction

from tenants import cells
from tenants.cellconfig import CONTROL, alias_for_cell
from tenants.conf import public_schema, schema_mode, site_domain
from tenants.management.actions import TENANT_HELP, action_parsers, add_jobs_argument
from tenants.models import Tenant, TenantOwnedModel
from tenants.operations import fleet, lifecycle
from tenants.operations.lifecycle import OperationError
from tenants.operations.progress import FleetProgress, console_for, print_table
from tenants.runtime.context import no_tenant, tenant_context

EXAMPLES = {
    "create": """examples:
  manage.py tenants create --name "Acme Corporation" --slug acme
  manage.py tenants create --name Shop --slug shop --domain shop.example.com --owner alice
  manage.py tenants create --name Acme --slug acme --cell eu2   (pinned to a cell)""",
    "cells": """example:
  manage.py tenants cells            (each cell: tenants, reachable, latency)
  manage.py tenants cells --json""",
    "list": """examples:
  manage.py tenants list
  manage.py tenants list --inactive
  manage.py tenants list --json | jq '.[].slug'""",
    "show": "example:\n  manage.py tenants show acme        (slug, domain, schema or id)",
    "deactivate": "example:\n  manage.py tenants deactivate acme   (its sites answer 403)",
    "reactivate": "example:\n  manage.py tenants reactivate acme",
    "rename": """example:
  manage.py tenants rename acme acme-corp
    schema mode: schema acme -> acme_corp; acme.<TENANT_BASE_DOMAIN> follows""",
    "delete": """examples:
  manage.py tenants delete acme                  (asks; row mode)
  manage.py tenants delete acme --drop-schema    (schema mode: the schema and its data go)
  manage.py tenants delete acme --keep-schema --yes""",
    "migrate": """examples:
  manage.py tenants migrate                 (public, then every tenant schema)
  manage.py tenants migrate --jobs 8
  manage.py tenants migrate --plan          (what would be applied, how)
  manage.py tenants migrate --check         (exit 1 if anything is pending)
exit status: 0 all migrated; 1 some tenants failed (named; the others are migrated;
rerun to apply what is left); 2 bad usage""",
    "export": """examples:
  manage.py tenants export acme acme.zip
    one file: manifest (versions, checksums), the site's rows and accounts, its uploads""",
    "import": """examples:
  manage.py tenants import acme.zip                      (as acme again, e.g. after delete)
  manage.py tenants import acme.zip --slug acme-copy     (acme-copy.<TENANT_BASE_DOMAIN>)
  manage.py tenants import acme.zip --slug acme2 --domain www.acme2.example
  manage.py tenants import acme.zip --slug acme2 --cell eu2   (default: the placement policy)
exit status: 0 imported and verified; 1 refused (damaged archive, checksums, taken name,
another person's username, unknown or unreachable cell): nothing was imported""",
    "move": """examples:
  manage.py tenants move acme --to eu2     (TENANCY_CELLS: schema mode, or row mode with
                                           row-level security; docs/cells.md)
    copies the site unfrozen, freezes its writes for the final copy and the switch (reads
    go on), verifies every table, switches the map, then removes the old copy
exit status: 0 moved (or finished an interrupted move); 1 not moved: the site serves from
its old cell; rerun the same command after a failure or a kill""",
    "run": """examples:
  manage.py tenants run --tenant acme -- shell -c "from home.models import PageContent; \\
      print(PageContent.objects.count())"
  manage.py tenants run --all clearsessions
  manage.py tenants run --all --keep-going -- check --deploy""",
}


# Each action, its help (also its --help description); its arguments: Command._<name>_arguments.
ACTIONS = {
    "create": "Create a tenant with its primary domain (and schema).",
    "list": "List tenants as a table (or JSON).",
    "show": "Show one tenant: domains, owner, members, data, schema state.",
    "deactivate": "Deactivate a tenant: its sites answer 403 until reactivated.",
    "reactivate": "Reactivate a deactivated tenant.",
    "rename": "Change a tenant's slug; in schema mode its schema is renamed (ALTER SCHEMA) and "
    "its <slug>.<TENANT_BASE_DOMAIN> domain follows.",
    "delete": "Delete a tenant and its domains (row mode: and its rows). In schema mode say "
    "what happens to its schema: --drop-schema or --keep-schema.",
    "migrate": "Apply pending migrations to the public schema, then to every tenant schema in "
    "parallel (schema mode; in row mode this is plain 'migrate').",
    "run": "Run any management command for one tenant or for all of them.",
    "cells": "List the cells (PostgreSQL servers holding tenants' data) with their tenant "
    "counts and health (docs/cells.md).",
    "export": "Write one tenant's site (rows, accounts, uploads) to an archive file.",
    "import": "Restore a tenant archive as a new tenant, verified against its checksums.",
    "move": "Move a tenant to another cell, its writes frozen only for the final switch.",
}


class Command(BaseCommand):
    help = (
        "Manage tenants: create, list, show, deactivate, reactivate, rename, delete, migrate "
        "every schema (schema mode), run any command for one tenant or all of them, export "
        "one to an archive file or import one. "
        "'manage.py tenants ACTION --help' explains each action."
    )

    def add_arguments(self, parser):
        add_action = action_parsers(parser, EXAMPLES)
        for name, help_text in ACTIONS.items():
            sub = add_action(name, help_text)
            sub.add_argument(
                "-v",
                "--verbosity",
                type=int,
                choices=[0, 1, 2, 3],
                default=argparse.SUPPRESS,
                help="0 quiet, 1 normal, 2 one line per tenant, 3 everything",
            )
            getattr(self, f"_{name}_arguments")(sub)

    # --- each action's arguments -----------------------------------------------------------------

    def _create_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Display name, e.g. 'Acme Corp'.")
        parser.add_argument(
            "--slug", required=True, help="DNS label; also gives the schema name (acme-corp)."
        )
        parser.add_argument(
            "--domain", help="Primary domain (default: <slug>.<TENANT_BASE_DOMAIN>)."
        )
        parser.add_argument("--owner", metavar="USERNAME", help="Platform user who owns it.")
        parser.add_argument(
            "--owner-email",
            metavar="EMAIL",
            help="Create the owner with this e-mail if USERNAME does not exist yet. Its "
            "password is asked for on a terminal, or read from $TENANT_OWNER_PASSWORD.",
        )
        parser.add_argument(
            "--no-input",
            "--noinput",
            action="store_true",
            dest="no_input",
            help="Ask nothing: a new owner's password comes from $TENANT_OWNER_PASSWORD, or it "
            "has none yet.",
        )
        parser.add_argument(
            "--cell",
            help="Put it in this cell (a TENANCY_CELLS name, or 'default' for the control "
            "database) instead of the one the placement policy picks.",
        )

    def _cells_arguments(self, parser):
        parser.add_argument("--json", action="store_true", dest="as_json", help="JSON for scripts.")

    def _list_arguments(self, parser):
        parser.add_argument("--json", action="store_true", dest="as_json", help="JSON for scripts.")
        _add_flags(
            parser.add_mutually_exclusive_group(),
            {"--active": "Only active tenants.", "--inactive": "Only inactive tenants."},
        )
        parser.add_argument("--search", metavar="TEXT", help="Name, slug or domain contains.")

    def _show_arguments(self, parser):
        parser.add_argument("tenant", help=TENANT_HELP)
        parser.add_argument("--json", action="store_true", dest="as_json", help="JSON for scripts.")

    def _deactivate_arguments(self, parser):
        parser.add_argument("tenant", help=TENANT_HELP)

    _reactivate_arguments = _deactivate_arguments

    def _rename_arguments(self, parser):
        parser.add_argument("tenant", help=TENANT_HELP)
        parser.add_argument("new_slug", help="The new slug.")

    def _delete_arguments(self, parser):
        parser.add_argument("tenant", help=TENANT_HELP)
        parser.add_argument(
            "--yes",
            "--no-input",
            "--noinput",
            action="store_true",
            dest="yes",
            help="Do not ask for confirmation.",
        )
        _add_flags(
            parser.add_mutually_exclusive_group(),
            {
                "--drop-schema": "Schema mode: drop the schema and data.",
                "--keep-schema": "Schema mode: keep the schema.",
            },
        )

    def _migrate_arguments(self, parser):
        add_jobs_argument(parser, "Schemas migrated at once")
        _add_tenants_argument(parser, "Only this tenant (repeatable).")
        _add_flags(
            parser,
            {
                "--skip-public": "Leave the public schema alone.",
                "--plan": "Show what would be applied; change nothing.",
                "--check": "Exit 1 if any migration is pending.",
            },
        )
        parser.add_argument(
            "--executor",
            choices=["auto", "django"],
            default="auto",
            help="auto: precomputed SQL where possible; django: Django's executor for all.",
        )
        parser.add_argument(
            "--lock-timeout",
            metavar="DURATION",
            help="Give up on a schema whose tables stay locked this long (e.g. 5s); it is "
            "reported as failed and a rerun retries it.",
        )

    def _run_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        _add_tenants_argument(who, "This tenant (repeatable).")
        who.add_argument("--all", action="store_true", help="Every tenant, one after another.")
        _add_flags(
            parser,
            {
                "--skip-default": "With --all: not the default tenant.",
                "--active-only": "With --all: only active tenants.",
                "--keep-going": "Go on after a tenant fails (exit 1).",
            },
        )
        parser.add_argument("command_name", metavar="COMMAND", help="The command to run.")
        parser.add_argument(
            "command_args", nargs=argparse.REMAINDER, metavar="...", help="Its arguments."
        )

    def _export_arguments(self, parser):
        parser.add_argument("tenant", help=TENANT_HELP)
        parser.add_argument("file", help="The archive to write (a zip file).")
        _add_database_argument(
            parser, "Read the tenant's data from this database alias (default: its cell's)."
        )

    def _import_arguments(self, parser):
        parser.add_argument("file", help="An archive written by 'tenants export'.")
        parser.add_argument("--slug", help="The new tenant's slug (default: the archive's).")
        parser.add_argument(
            "--domain", help="Its primary domain (default: <slug>.<TENANT_BASE_DOMAIN>)."
        )
        parser.add_argument("--name", help="Its name (default: the archive's).")
        _add_database_argument(parser, "Write the tenant's data to this database alias.")
        parser.add_argument(
            "--cell",
            help="Put it in this cell (a TENANCY_CELLS name, or 'default' for the control "
            "database); default: the placement policy's choice, as 'tenants create'.",
        )
        parser.add_argument(
            "--rename-users",
            action="store_true",
            help="Where an archived username belongs to someone else here, create the "
            "archive's account as <username>-<slug> instead of refusing.",
        )

    def _move_arguments(self, parser):
        parser.add_argument("tenant", help=TENANT_HELP)
        parser.add_argument("--to", required=True, metavar="CELL", help="The target cell.")

    def handle(self, *args, action, **options):
        self.verbosity = options.get("verbosity", 1)
        self.console = console_for(self.stdout)
        handler = getattr(self, "do_" + action)
        try:
            return handler(**options)
        except OperationError as error:
            raise CommandError(str(error)) from error
        except ValidationError as error:
            raise CommandError(lifecycle.validation_message(error)) from error
        except (IntegrityError, DatabaseError, psycopg.Error) as error:
            raise CommandError(f"Database error: {' '.join(str(error).split())}") from error
        except fleet.FleetError as error:
            raise CommandError(str(error)) from error
        except KeyboardInterrupt:
            raise CommandError(
                "Interrupted. Whatever finished is complete (one transaction per tenant); "
                "rerun to do the rest.",
                returncode=130,
            ) from None

    # --- create / list / show ------------------------------------------------------------------

    def do_create(self, *, name, slug, domain, owner, owner_email, no_input, cell=None, **_):
        from tenants.provisioning.services import create_tenant

        domain = domain or site_domain(slug)
        # Asked before the transaction: nothing is locked while someone types.
        password = self._new_owner_password(owner, owner_email, no_input) if owner else None
        with transaction.atomic():
            user = self._owner(owner, owner_email, password) if owner else None
            try:
                result = create_tenant(name=name, slug=slug, domain=domain, owner=user, cell=cell)
            except ValidationError as error:
                raise CommandError(lifecycle.validation_message(error)) from error
            except (cells.UnknownCell, cells.NoCellAvailable) as error:
                raise CommandError(str(error)) from error
        self.stdout.write(self.style.SUCCESS(result.message))
        if schema_mode():
            self.stdout.write(f"schema: {result.tenant.schema_name}")
        if cells.enabled():
            self.stdout.write(f"cell: {result.tenant.cell or CONTROL}")
        if user is not None:
            self.stdout.write(_sign_in_advice(result.tenant, user))

    def _owner(self, username, email, password=None):
        User = get_user_model()
        with no_tenant():
            user = User.objects.filter(username=username).first()
            if user is not None:
                return user
            if not email:
                raise CommandError(
                    f"No user {username!r}. Pass --owner-email to create it, or create it "
                    "first (createsuperuser)."
                )
            user = User(username=username, email=email)
            # Set before the site exists: in schema mode its own copy of the owner gets the
            # same password hash (grant_owner_access).
            user.set_password(password)  # None: an unusable password
            user.full_clean()
            user.provision_site = False  # this owner gets the site being created here
            user.save()
            self.stdout.write(f"created user {username}")
            return user

    def _new_owner_password(self, username, email, no_input) -> str | None:
        """The password of an owner about to be created: $TENANT_OWNER_PASSWORD, else asked
        on a terminal (twice; empty: none yet), else none. Checked by AUTH_PASSWORD_VALIDATORS."""
        from django.contrib.auth import password_validation

        with no_tenant():
            if not email or get_user_model().objects.filter(username=username).exists():
                return None
        candidate = get_user_model()(username=username, email=email)
        if "TENANT_OWNER_PASSWORD" in os.environ:
            password = os.environ["TENANT_OWNER_PASSWORD"]
            try:
                password_validation.validate_password(password, candidate)
            except ValidationError as error:
                raise CommandError("TENANT_OWNER_PASSWORD: " + " ".join(error.messages)) from None
            return password
        if no_input or not sys.stdin.isatty():
            return None
        for _ in range(3):
            password = getpass.getpass(f"Password for {username} (empty: none yet): ")
            if not password:
                return None
            if getpass.getpass("Password (again): ") != password:
                self.stderr.write("The passwords do not match.")
                continue
            try:
                password_validation.validate_password(password, candidate)
            except ValidationError as error:
                self.stderr.write(" ".join(error.messages))
                continue
            return password
        raise CommandError("No acceptable password given; nothing was created.")

    def _tenants_query(self, *, active=False, inactive=False, search=None):
        from django.db.models import Count, Q

        tenants = Tenant.objects.select_related("owner").prefetch_related("domains")
        if active:
            tenants = tenants.filter(is_active=True)
        if inactive:
            tenants = tenants.filter(is_active=False)
        if search:
            tenants = tenants.filter(
                Q(name__icontains=search)
                | Q(slug__icontains=search)
                | Q(domains__domain__icontains=search)
            ).distinct()
        return tenants.annotate(domain_count=Count("domains", distinct=True)).order_by("slug")

    def _as_dict(self, tenant):
        domains = sorted(tenant.domains.all(), key=lambda d: (not d.is_primary, d.domain))
        return {
            "id": tenant.pk,
            "slug": tenant.slug,
            "name": tenant.name,
            "schema": tenant.schema_name if schema_mode() else None,
            "cell": tenant.cell or CONTROL,
            "active": tenant.is_active,
            "default": tenant.is_default,
            "owner": tenant.owner.username if tenant.owner else None,
            "primary_domain": next((d.domain for d in domains if d.is_primary), None),
            "domains": [d.domain for d in domains],
            "created_at": tenant.created_at.isoformat(),
        }

    def do_list(self, *, as_json, active, inactive, search, **_):
        with no_tenant():
            rows = [
                self._as_dict(t)
                for t in self._tenants_query(active=active, inactive=inactive, search=search)
            ]
        if as_json:
            self.stdout.write(_dumps(rows))
            return
        schema = schema_mode()
        headers = ["Slug", "Name", "Primary domain", "Domains", "Active", "Owner"]
        headers[2:2] = ["Schema"] if schema else []
        headers[2:2] = ["Cell"] if cells.enabled() else []
        table = []
        for row in rows:
            line = [row["slug"], row["name"], row["primary_domain"], len(row["domains"])]
            line[2:2] = [row["schema"]] if schema else []
            line[2:2] = [row["cell"]] if cells.enabled() else []
            line += ["yes" if row["active"] else "NO", row["owner"] or "-"]
            table.append(line)
        print_table(self.console, f"{len(rows)} tenants", headers, table)

    def do_show(self, *, tenant, as_json, **_):
        tenant = lifecycle.find_tenant(tenant)
        with no_tenant():
            info = self._as_dict(
                Tenant.objects.prefetch_related("domains").select_related("owner").get(pk=tenant.pk)
            )
        info["rows"] = self._row_counts(tenant)
        info["accounts"] = _accounts(tenant)
        if schema_mode():
            info["schema_state"] = self._schema_state(tenant)
        if as_json:
            self.stdout.write(_dumps(info))
            return
        lines = [
            ("Name", info["name"]),
            ("Slug", info["slug"]),
            ("Id", info["id"]),
            ("Active", "yes" if info["active"] else "NO (its sites answer 403)"),
            ("Owner", info["owner"] or "-"),
            ("Created", info["created_at"]),
            ("Domains", ", ".join(info["domains"]) or "-"),
            ("Primary domain", info["primary_domain"] or "-"),
        ]
        if "schema_state" in info:
            lines.append(("Schema", f"{info['schema']} ({info['schema_state']})"))
        for label, count in info["rows"].items():
            lines.append((label, count))
        print_table(self.console, f"Tenant {info['slug']}", ["", ""], lines)
        _print_accounts(self.console, info["accounts"])

    def _row_counts(self, tenant) -> dict:
        counts = {}
        try:
            with tenant_context(tenant):
                for model in _tenant_owned_models():
                    label = f"{model._meta.verbose_name_plural} ({model._meta.label})"
                    counts[label] = model.objects.count()
        except DatabaseError as error:
            counts["data"] = f"unreadable: {error}".strip()
        return counts

    def _schema_state(self, tenant) -> str:
        from tenants import postgres

        with postgres.connect(cells.alias_of(tenant)) as conn:
            applied = fleet.read_applied(conn, [tenant.schema_name])
        if tenant.schema_name not in applied:
            return "MISSING"
        if applied[tenant.schema_name] is None:
            return "not migrated"
        pending = fleet.forwards_plan(fleet.load_graph(), applied[tenant.schema_name])
        return f"{len(pending)} migrations pending" if pending else "up to date"

    def do_cells(self, *, as_json, **_):
        counts = cells.tenant_counts()
        rows = []
        for name in cells.cell_names():
            state = cells.health(name)
            rows.append(
                {
                    "cell": name,
                    "alias": state.alias,
                    "tenants": counts.get(name, 0),
                    "reachable": state.reachable,
                    "latency_ms": None if state.latency_ms is None else round(state.latency_ms, 1),
                    "error": state.error,
                }
            )
        if as_json:
            self.stdout.write(_dumps(rows))
        else:
            self._print_cells(rows)
        if not all(r["reachable"] for r in rows):
            raise CommandError("Some cells are not reachable.", returncode=1)

    def _print_cells(self, rows):
        table = [
            [
                r["cell"],
                r["alias"],
                r["tenants"],
                "yes" if r["reachable"] else "NO",
                "-" if r["latency_ms"] is None else f"{r['latency_ms']:.1f} ms",
                r["error"] or "",
            ]
            for r in rows
        ]
        headers = ["Cell", "Alias", "Tenants", "Reachable", "Latency", "Error"]
        print_table(self.console, f"{len(rows)} cells", headers, table)

    # --- state changes ---------------------------------------------------------------------------

    def do_deactivate(self, *, tenant, **_):
        tenant = lifecycle.find_tenant(tenant)
        changed = lifecycle.set_active(tenant, False)
        state = "deactivated" if changed else "was already inactive"
        self.stdout.write(f"{tenant.slug} {state}.")

    def do_reactivate(self, *, tenant, **_):
        tenant = lifecycle.find_tenant(tenant)
        changed = lifecycle.set_active(tenant, True)
        self.stdout.write(f"{tenant.slug} {'reactivated' if changed else 'was already active'}.")

    def do_rename(self, *, tenant, new_slug, **_):
        tenant = lifecycle.find_tenant(tenant)
        for change in lifecycle.rename_slug(tenant, new_slug):
            self.stdout.write(change)

    def do_delete(self, *, tenant, yes, drop_schema, keep_schema, **_):
        tenant = lifecycle.find_tenant(tenant)
        schema = schema_mode()
        if tenant.is_default:
            raise CommandError("The default tenant is the platform's own site; it cannot go.")
        if schema and not (drop_schema or keep_schema):
            raise CommandError(
                f"Say what happens to schema {tenant.schema_name!r}: --drop-schema (its data "
                "is deleted) or --keep-schema."
            )
        if not schema and (drop_schema or keep_schema):
            raise CommandError("--drop-schema/--keep-schema only apply in schema mode.")
        if not yes:
            what = f"tenant {tenant.slug} ({tenant.name})"
            what += f" and DROP schema {tenant.schema_name}" if drop_schema else ""
            what += "" if schema else " and all its rows"
            if not sys.stdin.isatty():
                raise CommandError(f"Refusing to delete {what} without --yes (no terminal).")
            answer = input(f"Delete {what}? Type the slug to confirm: ")
            if answer.strip() != tenant.slug:
                raise CommandError("Not confirmed; nothing was deleted.")
        for line in lifecycle.delete_tenant(tenant, drop_schema=drop_schema):
            self.stdout.write(line)

    # --- migrate ---------------------------------------------------------------------------------

    def do_migrate(self, *, jobs, tenants, skip_public, plan, check, executor, lock_timeout, **_):
        if jobs < 1:
            raise CommandError("--jobs must be at least 1.")
        if not schema_mode():
            self._migrate_row_mode(tenants, plan=plan, check=check)
            return
        started = time.perf_counter()
        public_pending = self._migrate_public_schemas(skip_public or bool(tenants), plan or check)
        slugs_by_cell = self._slugs_by_schema(tenants)
        slugs = {
            schema: slug for mapping in slugs_by_cell.values() for schema, slug in mapping.items()
        }
        precompute = executor == "auto"
        plans = [
            fleet.plan_fleet(sorted(mapping), precompute=precompute, alias=alias_for_cell(cell))
            for cell, mapping in slugs_by_cell.items()
        ]
        fleet_plan = _merged(plans)
        if plan or check:
            self._print_plan(fleet_plan, public_pending)
            if check and (fleet_plan.pending or public_pending or fleet_plan.missing):
                raise CommandError("Migrations are pending.")
            return
        if fleet_plan.pending + len(fleet_plan.missing) == 0:
            self.stdout.write(
                f"{len(slugs)} tenant schemas: nothing to apply "
                f"({time.perf_counter() - started:.2f}s)."
            )
            return
        results = self._apply_fleet_plan(fleet_plan, slugs, jobs, lock_timeout, plans)
        self._migrate_summary(results, fleet_plan, len(slugs), time.perf_counter() - started, slugs)

    def _migrate_public_schemas(self, skip: bool, dry: bool) -> bool:
        """The public schema of the control database, then of each cell (the shared apps, so
        that a cell's tenant schemas find what they refer to). Whether any was pending."""
        if skip:
            return False
        pending = False
        for cell in cells.cell_names():
            alias = alias_for_cell(cell)
            if not fleet.public_needs_migrating(alias):
                continue
            pending = True
            where = "" if alias == "default" else f" of cell {cell}"
            if dry:
                self.stdout.write(f"public{where}: migrations pending")
            else:
                self.stdout.write(f"Migrating the public schema{where}")
                fleet.run_django_executor(public_schema(), verbosity=self.verbosity, alias=alias)
        return pending

    def _migrate_row_mode(self, tenants, *, plan, check):
        if tenants:
            raise CommandError("Row mode has no per-tenant schemas: --tenant needs schema mode.")
        self.stdout.write("Row mode: every tenant shares the tables; running 'migrate'.")
        call_command(
            "migrate", interactive=False, verbosity=self.verbosity, check_unapplied=check, plan=plan
        )
        for cell, alias in cells.configured().items():  # each cell's tables (docs/cells.md)
            self.stdout.write(f"Cell {cell}: running 'migrate --database {alias}'.")
            call_command(
                "migrate",
                database=alias,
                interactive=False,
                verbosity=self.verbosity,
                check_unapplied=check,
                plan=plan,
            )

    def _slugs_by_schema(self, tenants) -> dict[str, dict[str, str]]:
        """The tenant schemas to migrate (those of ``tenants``, else all), with their slugs,
        by cell."""
        with no_tenant():
            chosen = Tenant.objects.exclude(schema_name=public_schema())
            if tenants:
                chosen = chosen.filter(pk__in=[lifecycle.find_tenant(t).pk for t in tenants])
            by_cell: dict[str, dict[str, str]] = {}
            for schema, slug, cell in chosen.values_list("schema_name", "slug", "cell"):
                by_cell.setdefault(cell or CONTROL, {})[schema] = slug
            return by_cell

    def _apply_fleet_plan(self, fleet_plan, slugs, jobs, lock_timeout, plans=None):
        if self.verbosity >= 1:
            for group in fleet_plan.groups:
                self.stdout.write(_describe_group(group))
        total = fleet_plan.pending + len(fleet_plan.missing)
        progress = FleetProgress(self.console, total, "tenant schemas", verbosity=self.verbosity)
        with progress:
            return fleet.apply_plan(
                plans or fleet_plan,
                jobs=jobs,
                lock_timeout=lock_timeout,
                on_result=lambda r: progress.advance(
                    f"{slugs.get(r.schema, r.schema)} ({r.schema})",
                    r.ok,
                    r.error or (f"{r.how} {r.seconds * 1000:.0f}ms"),
                ),
            )

    def _print_plan(self, fleet_plan, public_pending):
        rows = []
        for group in fleet_plan.groups:
            names = ", ".join(f"{m.app_label}.{m.name}" for m in group.plan) or "-"
            how = group.label + (f" ({group.reason})" if group.reason else "")
            rows.append([len(group.schemas), len(group.plan), how, names])
        if fleet_plan.up_to_date:
            rows.append([len(fleet_plan.up_to_date), 0, "up to date", "-"])
        if fleet_plan.missing:
            rows.append(
                [len(fleet_plan.missing), "-", "MISSING schema", ", ".join(fleet_plan.missing)]
            )
        print_table(
            self.console,
            "Tenant schemas by migration state",
            ["Schemas", "Pending", "How", "Migrations"],
            rows,
        )
        if self.verbosity >= 2:
            for group in fleet_plan.groups:
                if group.script:
                    self.stdout.write(
                        f"-- SQL for {len(group.schemas)} schemas, e.g. {group.schemas[0]}"
                    )
                    self.stdout.write(group.script)

    def _migrate_summary(self, results, fleet_plan, count, elapsed, slugs):
        failed = [r for r in results if not r.ok]
        by_sql = sum(1 for r in results if r.ok and r.how == "sql")
        by_executor = sum(1 for r in results if r.ok and r.how == "executor")
        rate = len(results) / elapsed if elapsed else 0.0
        rows = [
            ["Tenant schemas", count],
            ["Already up to date", len(fleet_plan.up_to_date)],
            ["Migrated with precomputed SQL", by_sql],
            ["Migrated with Django's executor", by_executor],
            ["Failed", len(failed)],
            ["Time", f"{elapsed:.1f}s ({rate:,.0f} schemas/s)"],
        ]
        print_table(self.console, "Fleet migration", ["", ""], rows)
        if failed:
            print_table(
                self.console,
                "Failed tenants (nothing was applied to them; rerun to retry)",
                ["Tenant", "Schema", "Error"],
                [[slugs.get(r.schema, "?"), r.schema, r.error] for r in failed],
            )
            raise CommandError(
                f"{len(failed)} of {len(results)} tenant schemas failed; every other one is "
                "migrated. Fix the cause and rerun: only what is left is applied."
            )

    # --- export / import ------------------------------------------------------------------------

    def do_export(self, *, tenant, file, database, **_):
        from tenants.operations.transfer import export_tenant

        tenant = lifecycle.find_tenant(tenant)
        tables = export_tenant(tenant, file, using=database)
        rows = sum(t["rows"] for t in tables.values())
        self.stdout.write(f"Exported {tenant.slug}: {rows} rows in {len(tables)} tables to {file}.")
        if self.verbosity >= 2:
            for name, info in tables.items():
                self.stdout.write(f"  {name}: {info['rows']} rows, sha256 {info['checksum']}")

    def do_import(self, *, file, slug, domain, name, database, rename_users, cell=None, **_):
        from tenants.operations.transfer import import_tenant

        done = import_tenant(
            file,
            slug=slug,
            domain=domain,
            name=name,
            using=database,
            cell=cell,
            rename_users=rename_users,
        )
        tenant = done.tenant
        rows = sum(t["rows"] for t in done.tables.values())
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {tenant.slug} ({tenant.name}) at {tenant.primary_domain}: {rows} rows "
                f"in {len(done.tables)} tables and {done.files} files, checksums verified."
            )
        )
        if cells.enabled():
            self.stdout.write(f"cell: {tenant.cell or CONTROL}")
        for label, names in (("created", done.users_created), ("reused", done.users_reused)):
            if names:
                self.stdout.write(f"accounts {label}: {', '.join(names)}")
        for old, new in done.users_renamed.items():
            self.stdout.write(f"account {old} was taken here: the archive's is now {new}")
        if self.verbosity >= 2:
            for label, info in done.tables.items():
                self.stdout.write(f"  {label}: {info['rows']} rows, sha256 {info['checksum']}")

    def do_move(self, *, tenant, to, **_):
        from tenants.operations.move import MoveError, move_tenant
        from tenants.operations.progress import StepProgress

        tenant = lifecycle.find_tenant(tenant)
        with StepProgress(self.console, f"move {tenant.slug}", MOVE_STEPS) as progress:
            try:
                done = move_tenant(tenant, to, on_step=progress.step)
            except MoveError as error:
                raise CommandError(str(error)) from error
        if done.resumed:
            self.stdout.write(done.resumed)
        if done.source == done.target and not done.freeze_started:
            self.stdout.write(f"{tenant.slug} is on cell {done.target}.")
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Moved {tenant.slug} from {done.source} to {done.target} in "
                    f"{done.total_seconds:.2f} s; writes frozen "
                    f"{done.freeze_seconds * 1000:.0f} ms "
                    f"({done.delta_rows} rows copied during the freeze)."
                )
            )
        rows = sum(rows for rows, _ in done.tables.values())
        if done.tables:
            self.stdout.write(f"verified: {rows} rows in {len(done.tables)} tables equal on both")
        if done.removed:
            self.stdout.write(done.removed)
        if self.verbosity >= 2:
            for label, info in done.checksums.items():
                self.stdout.write(f"  {label}: {info['rows']} rows, sha256 {info['checksum']}")
            for table, (count, digest) in done.tables.items():
                self.stdout.write(f"  {table}: {count} rows, md5 {digest}")

    # --- run -------------------------------------------------------------------------------------

    def do_run(
        self,
        *,
        tenants,
        all,
        skip_default,
        active_only,
        keep_going,
        command_name,
        command_args,
        **_,
    ):
        if command_name not in get_commands():
            raise CommandError(f"Unknown command: {command_name!r} (see 'manage.py help').")
        if command_name == "tenants" and command_args[:1] == ["run"]:
            raise CommandError("'tenants run' cannot run itself.")
        args = command_args[1:] if command_args[:1] == ["--"] else command_args
        if tenants:
            targets = [lifecycle.find_tenant(t) for t in tenants]
        else:
            with no_tenant():
                query = Tenant.objects.order_by("slug")
                if active_only:
                    query = query.filter(is_active=True)
                targets = [t for t in query if not (skip_default and t.is_default)]
        failures = []
        for tenant in targets:
            if self.verbosity >= 1:
                self.stdout.write(
                    self.style.MIGRATE_HEADING(f"== {tenant.slug} ({tenant.primary_domain})")
                )
            try:
                with tenant_context(tenant):
                    call_command(command_name, *args)
            except (Exception, SystemExit) as error:
                message = str(error) or type(error).__name__
                self.stderr.write(f"{tenant.slug}: {message}")
                failures.append(tenant.slug)
                if not keep_going:
                    break
        if failures:
            succeeded = len(targets) - len(failures) if keep_going else None
            more = "" if keep_going else " (stopped there; --keep-going goes on)"
            raise CommandError(
                f"{command_name} failed for {', '.join(failures)}{more}"
                + (f"; {succeeded} other tenants succeeded." if succeeded is not None else ".")
            )


MOVE_STEPS = (
    "export",
    "schema",
    "import",
    "copied",
    "freeze",
    "sync",
    "verify",
    "seal",
    "switch",
    "remove-old-copy",
)


def _add_flags(parser, flags: dict[str, str]):
    """On/off options, each with its help."""
    for flag, help_text in flags.items():
        parser.add_argument(flag, action="store_true", help=help_text)


def _add_database_argument(parser, help_text):
    parser.add_argument("--database", metavar="ALIAS", help=help_text)


def _add_tenants_argument(parser, help_text):
    parser.add_argument(
        "--tenant", action="append", dest="tenants", metavar="TENANT", help=help_text
    )


def _sign_in_advice(tenant, user) -> str:
    """How the owner gets into the new site's admin, as it is (their password, or none yet)."""
    url = tenant.url("/admin/")
    if user.has_usable_password():
        return f"{user.username} signs in at {url} with their password."
    # Schema mode: the site has its own copy of the account (tenants show lists both).
    where = f"tenants run --tenant {tenant.slug} -- " if schema_mode() else ""
    return (
        f"{user.username} has no password yet: set it with 'manage.py {where}changepassword "
        f"{user.username}', then sign in at {url}."
    )


def _accounts(tenant) -> list[dict]:
    """Who can sign in where: each member and the owner, with their platform account and, in
    schema mode, the site's own copy of it (its schema's auth_user; a separate password)."""
    from accounts.models import Membership

    User = get_user_model()
    copies = schema_mode() and not tenant.is_default
    try:
        with tenant_context(tenant):
            members = {m.user.username: m for m in Membership.objects.select_related("user")}
    except DatabaseError:
        members = {}  # its schema is unreadable: the data rows say why
    with no_tenant():
        owner = User.objects.filter(pk=tenant.owner_id).first()
        names = sorted({*members, *([owner.username] if owner else [])})
        platform = {u.username: u for u in User.objects.filter(username__in=names)}

    def account(user):
        if user is None:
            return None
        return {"password": user.has_usable_password(), "active": user.is_active}

    return [
        {
            "username": name,
            "role": members[name].role if name in members else None,
            "owner": owner is not None and name == owner.username,
            "platform_account": account(platform.get(name)),
            "site_account": account(members[name].user if name in members else None)
            if copies
            else None,
        }
        for name in names
    ]


def _print_accounts(console, accounts):
    def state(account):
        if account is None:
            return "-"
        password = "password set" if account["password"] else "NO password"
        return password + ("" if account["active"] else ", inactive")

    headers = ["User", "Role", "Platform account"]
    copies = schema_mode() and any(a["site_account"] is not None for a in accounts)
    headers += ["Site's own account"] if copies else []
    rows = []
    for a in accounts:
        role = (a["role"] or "not a member") + (" (tenant owner)" if a["owner"] else "")
        row = [a["username"], role, state(a["platform_account"])]
        rows.append(row + ([state(a["site_account"])] if copies else []))
    print_table(console, "Accounts", headers, rows or [["-"] * len(headers)])


def _tenant_owned_models():
    from django.apps import apps

    return [m for m in apps.get_models() if issubclass(m, TenantOwnedModel) and not m._meta.proxy]


def _describe_group(group) -> str:
    names = ", ".join(f"{m.app_label}.{m.name}" for m in group.plan[:5])
    if len(group.plan) > 5:
        names += f", ... ({len(group.plan)} in all)"
    how = group.label + (f": {group.reason}" if group.reason else "")
    return f"{len(group.schemas)} schemas: {names or 'create migration table'} via {how}"


def _merged(plans):
    """One plan for printing and counting, made of every cell's."""
    return fleet.FleetPlan(
        groups=[group for one in plans for group in one.groups],
        up_to_date=[schema for one in plans for schema in one.up_to_date],
        missing=[schema for one in plans for schema in one.missing],
    )


def _dumps(data) -> str:
    return json.dumps(data, indent=2, default=str)
