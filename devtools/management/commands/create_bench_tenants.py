"""manage.py create_bench_tenants N: many tenants, fast, for benchmarks and upgrade rehearsals."""

from __future__ import annotations

import time

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from tenants import postgres
from tenants.conf import schema_mode, site_domain
from tenants.models import Domain, Tenant
from tenants.operations.progress import FleetProgress, console_for
from tenants.provisioning import bulk
from tenants.runtime.context import no_tenant, scopes_disabled, tenant_context
from tenants.runtime.resolution import tenants_changed
from tenants.validators import schema_name_for_slug


class Command(BaseCommand):
    help = (
        "Create N benchmark tenants <prefix>-00001... with domains <slug>.<TENANT_BASE_DOMAIN>; "
        "in schema mode each gets a migrated schema, cloned from one template schema migrated "
        "once (tenants.provisioning.bulk), in parallel. Optionally with pages and members. "
        "Tenants that exist are left alone, so a rerun finishes an interrupted run."
    )

    def add_arguments(self, parser):
        parser.add_argument("count", type=int, help="How many tenants in all (e.g. 1000).")
        parser.add_argument("--prefix", default="bench", help="Slug prefix (default: bench).")
        parser.add_argument("--jobs", "-j", type=int, default=2, help="Schemas made at once.")
        parser.add_argument("--pages", type=int, default=0, help="Pages per tenant.")
        parser.add_argument("--members", type=int, default=0, help="Members per tenant.")
        parser.add_argument(
            "--password",
            help="Members' password (default: none, they cannot sign in).",
        )

    def handle(self, *args, count, prefix, jobs, pages, members, password, **options):
        if count < 1 or jobs < 1 or pages < 0 or members < 0:
            raise CommandError("count and --jobs must be positive; --pages/--members >= 0.")
        started = time.perf_counter()
        slugs = [f"{prefix}-{i:05d}" for i in range(1, count + 1)]
        with no_tenant():
            existing = set(Tenant.objects.filter(slug__in=slugs).values_list("slug", flat=True))
        wanted = [s for s in slugs if s not in existing]
        if not wanted:
            self.stdout.write(f"All {count} tenants exist already.")
            return
        if schema_mode():
            wanted = self._make_schemas(wanted, jobs, options["verbosity"])
        tenants = self._make_rows(wanted)
        if pages or members:
            self._add_content(tenants, pages, members, password)
        elapsed = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {len(tenants)} tenants in {elapsed:.1f}s "
                f"({len(existing)} existed already)."
            )
        )

    def _make_schemas(self, slugs, jobs, verbosity):
        """Schemas first, tenant rows after: a tenant never exists without its schema."""
        schemas = {schema_name_for_slug(s): s for s in slugs}
        with connection.cursor() as cursor:
            present = postgres.existing_schemas(cursor, list(schemas))
        todo = [s for s in schemas if s not in present]
        if todo:
            self.stdout.write(f"Cloning {len(todo)} schemas from a freshly migrated template")
            blueprint = bulk.build_blueprint()
            progress = FleetProgress(
                console_for(self.stdout), len(todo), "schemas", verbosity=verbosity
            )
            with progress:
                failures = bulk.provision_schemas(
                    todo,
                    jobs=jobs,
                    blueprint=blueprint,
                    on_done=lambda name, error: progress.advance(
                        name, error is None, str(error or "")
                    ),
                )
            if failures:
                raise CommandError(
                    f"{len(failures)} schemas could not be made (e.g. {next(iter(failures))}: "
                    f"{next(iter(failures.values()))}); rerun to finish."
                )
        return list(schemas.values())

    @transaction.atomic
    def _make_rows(self, slugs):
        with no_tenant():
            tenants = Tenant.objects.bulk_create(
                Tenant(
                    name=f"Bench tenant {slug.rsplit('-', 1)[-1]}",
                    slug=slug,
                    schema_name=schema_name_for_slug(slug),
                )
                for slug in slugs
            )
            Domain.objects.bulk_create(
                Domain(domain=site_domain(t.slug), tenant=t, is_primary=True) for t in tenants
            )
            tenants_changed()  # bulk_create sends no signals: running servers must see them
        return tenants

    def _add_content(self, tenants, pages, members, password):
        from accounts.models import Membership
        from home.models import PageContent

        User = get_user_model()
        hashed = make_password(password) if password else make_password(None)
        for tenant in tenants:
            with transaction.atomic(), tenant_context(tenant), scopes_disabled():
                PageContent.objects.bulk_create(
                    PageContent(
                        tenant=tenant,
                        title=f"{tenant.name}: page {n}",
                        body=f"Page {n} of {tenant.slug}. " * 5,
                        ordering=n,
                    )
                    for n in range(1, pages + 1)
                )
                users = User.objects.bulk_create(
                    User(
                        username=f"{tenant.slug}-member{n}",
                        email=f"member{n}@{tenant.slug}.example",
                        password=hashed,
                    )
                    for n in range(1, members + 1)
                )
                Membership.objects.bulk_create(
                    Membership(
                        tenant=tenant,
                        user=user,
                        role=Membership.Role.OWNER if n == 0 else Membership.Role.EDITOR,
                    )
                    for n, user in enumerate(users)
                )
