"""The measuring side of benchmarks/provisioning.py: runs inside Django, in one mode.

Started by provisioning.py as a subprocess (settings come from the environment it sets), it
prepares a fresh database, grows the fleet to each size asked for, and times provisioning
(from the user row existing to a committed, live site) by every path, then whole sign-up
requests. It prints one JSON document on its last line.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from contextlib import nullcontext


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(milliseconds):
    return {
        "n": len(milliseconds),
        "p50": statistics.median(milliseconds),
        "p95": percentile(milliseconds, 0.95),
    }


class Worker:
    def __init__(self, options):
        import django

        django.setup()
        from django.conf import settings

        self.options = options
        self.schema_mode = settings.TENANCY_MODE == "schema"
        self.counter = 0

    def log(self, message):
        print(message, file=sys.stderr, flush=True)

    # Setup --------------------------------------------------------------------------------------

    def prepare_database(self):
        from django.core.management import call_command

        call_command("ensure_database", verbosity=0)  # row-level security: the site's role
        call_command("migrate", interactive=False, verbosity=0)
        call_command("seed_demo_tenants", verbosity=0)
        if self.schema_mode:
            from tenants.provisioning import schema_factory, schema_template

            schema_factory.prepare(spares=0)
            # django-tenants' clone path copies a base schema made by the migrations.
            if not schema_template.schema_exists("dt_clone_base"):
                schema_template.migrate_new_schema("dt_clone_base")

    def tenant_count(self):
        from tenants.models import Tenant

        return Tenant.objects.count()

    def grow_fleet(self, size, threads=3):
        """Add real tenants (schema, domain, content) until there are ``size``; a few threads
        at once, since the database does the work (and has more than one core)."""
        from concurrent.futures import ThreadPoolExecutor

        from django.db import connections
        from django.test import override_settings

        from tenants.conf import site_domain
        from tenants.provisioning.services import create_tenant
        from tenants.provisioning.starter import starter_pages

        missing = size - self.tenant_count()
        if missing <= 0:
            return
        self.log(f"  growing the fleet by {missing} tenants to {size}...")
        started = time.perf_counter()

        def make(indexes):
            try:
                for i in indexes:
                    slug = f"fleet-{size}-{i:05d}"
                    create_tenant(
                        name=f"Fleet {i}",
                        slug=slug,
                        domain=site_domain(slug),
                        pages=starter_pages(f"Fleet {i}"),
                    )
            finally:
                connections.close_all()

        slices = [range(t, missing, threads) for t in range(threads)]
        with override_settings(TENANCY_SCHEMA_POOL_SIZE=0), ThreadPoolExecutor(threads) as pool:
            list(pool.map(make, slices))
        self.log(f"  ...in {time.perf_counter() - started:.1f} s")

    def new_user(self, prefix):
        """A platform user whose row exists, with no site yet (auto-provisioning off)."""
        from django.contrib.auth import get_user_model
        from django.test import override_settings

        self.counter += 1
        with override_settings(TENANCY_AUTO_PROVISION=False):
            return get_user_model().objects.create_user(
                f"{prefix}-{self.counter:05d}", f"u{self.counter}@example.com", None
            )

    # Paths --------------------------------------------------------------------------------------

    def time_ours(self, samples, pool):
        from django.test import override_settings

        from tenants.provisioning import schema_pool
        from tenants.provisioning.services import provision_tenant_for_user

        spares_before = 0
        if self.schema_mode and pool:
            schema_pool.fill(samples + 2)
            spares_before = len(schema_pool.spare_names())
        timings = []
        with override_settings(TENANCY_SCHEMA_POOL_SIZE=samples + 10 if pool else 0):
            for _ in range(samples):
                user = self.new_user("ours")
                started = time.perf_counter()
                provision_tenant_for_user(user)
                timings.append((time.perf_counter() - started) * 1000)
        result = summary(timings)
        if self.schema_mode and pool:
            result["from_pool"] = spares_before - len(schema_pool.spare_names())
        return result

    def time_django_tenants(self, samples, clone):
        """django-tenants' own ways: Tenant(auto_create_schema=True).save() runs the migrations,
        or, with TENANT_BASE_SCHEMA, clones the base schema with its clone_schema() function.
        The rest (domain, content, owner access) is the same as ours, in one transaction."""
        from django.db import transaction
        from django.test import override_settings

        from home.content import add_pages
        from tenants.conf import site_domain
        from tenants.models import Domain, Tenant
        from tenants.provisioning.services import grant_owner_access
        from tenants.provisioning.starter import starter_pages
        from tenants.runtime.context import no_tenant, tenant_context
        from tenants.validators import schema_name_for_slug, slug_for_username

        overrides = (
            override_settings(
                TENANT_BASE_SCHEMA="dt_clone_base", TENANT_CREATION_FAKES_MIGRATIONS=True
            )
            if clone
            else nullcontext()
        )
        timings = []
        with overrides:
            for _ in range(samples):
                user = self.new_user("dt-clone" if clone else "dt-migrate")
                slug = slug_for_username(user.username)
                started = time.perf_counter()
                with transaction.atomic(), no_tenant():
                    tenant = Tenant(
                        name=f"{user.username}'s site",
                        slug=slug,
                        schema_name=schema_name_for_slug(slug),
                        owner=user,
                    )
                    tenant.auto_create_schema = True
                    tenant.save(verbosity=0)
                    Domain.objects.create(domain=site_domain(slug), tenant=tenant, is_primary=True)
                    with tenant_context(tenant):
                        add_pages(starter_pages(tenant.name))
                    grant_owner_access(tenant, user)
                timings.append((time.perf_counter() - started) * 1000)
        return summary(timings)

    def time_requests(self, samples):
        """Whole sign-up requests (POST /api/register/), with Django's default PBKDF2 hash."""
        from django.contrib.auth.hashers import make_password
        from django.test import Client, override_settings

        from tenants.provisioning import schema_pool

        if self.schema_mode:
            schema_pool.fill(samples + 2)
        client = Client(HTTP_HOST="localhost")
        requests, hashes = [], []
        with override_settings(TENANCY_SCHEMA_POOL_SIZE=samples + 10):
            for _ in range(samples):
                self.counter += 1
                payload = {
                    "username": f"req-{self.counter:05d}",
                    "email": f"r{self.counter}@example.com",
                    "password": "correct horse battery staple",
                }
                started = time.perf_counter()
                response = client.post(
                    "/api/register/", json.dumps(payload), content_type="application/json"
                )
                requests.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 201, response.content
                started = time.perf_counter()
                make_password(payload["password"])
                hashes.append((time.perf_counter() - started) * 1000)
        return {"request": summary(requests), "hash": summary(hashes)}

    # Run ----------------------------------------------------------------------------------------

    def run(self):
        options = self.options
        self.prepare_database()
        results = {}
        for size in options["sizes"]:
            self.grow_fleet(size)
            existing = self.tenant_count()
            self.log(f"  measuring at {existing} existing tenants")
            at_size = {"existing": existing}
            if self.schema_mode:
                at_size["ours_spare"] = self.time_ours(options["samples"], pool=True)
                at_size["ours_script"] = self.time_ours(options["samples"], pool=False)
                at_size["django_tenants_migrate"] = self.time_django_tenants(
                    options["baseline_samples"], clone=False
                )
                at_size["django_tenants_clone"] = self.time_django_tenants(
                    options["baseline_samples"], clone=True
                )
            else:
                at_size["ours_row"] = self.time_ours(options["samples"], pool=False)
            at_size["sign_up"] = self.time_requests(options["request_samples"])
            results[str(size)] = at_size
        print(json.dumps(results))


def main(argv):
    options = json.loads(argv[0])
    Worker(options).run()


if __name__ == "__main__":
    main(sys.argv[1:])
