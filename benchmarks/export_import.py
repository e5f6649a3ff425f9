"""Export and import of one tenant: how long for a site of N pages, in each mode?

For each mode a database of its own is made and migrated (row mode on SQLite, row mode on
PostgreSQL with row-level security, schema mode), a tenant gets --pages pages, and
``export_tenant`` / ``import_tenant`` (under a new slug: ids remapped in row mode, checksums
verified before commit) are timed --runs times; medians are printed.

Baselines, measured in the same run on the same rows: reading them (``values_list`` in the
tenant's context, what any export must at least do) for the export, and writing them with
Django's ``bulk_create`` into a new tenant (no checks, no id mapping, no verification) for the
import.

    .venv/bin/python benchmarks/export_import.py                      # 10,000 pages, 3 runs
    .venv/bin/python benchmarks/export_import.py --modes schema --pages 1000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MEASURE = """
import json, statistics, tempfile, time
from django.db import transaction
from home.models import PageContent
from tenants.conf import site_domain
from tenants.models import Tenant
from tenants.operations.transfer import export_tenant, import_tenant
from tenants.provisioning.services import create_tenant
from tenants.runtime.context import no_tenant, scopes_disabled, tenant_context

def new(slug):
    with no_tenant():
        for old in Tenant.objects.filter(slug=slug):
            with scopes_disabled():
                old.delete(force_drop=True)
    return create_tenant(name=slug, slug=slug, domain=site_domain(slug)).tenant

def pages(n):
    return [PageContent(title=f"Page {{i}}", body="x" * 500, ordering=i) for i in range(n)]

source = new("bench-export")
with tenant_context(source), transaction.atomic():
    PageContent.objects.bulk_create(pages({pages}))
path = tempfile.mktemp(suffix=".zip")
times = {{"export": [], "import": [], "read": [], "bulk_create": []}}
for run in range({runs}):
    started = time.perf_counter()
    with tenant_context(source):
        list(PageContent.objects.values_list().iterator(chunk_size=2000))
    times["read"].append(time.perf_counter() - started)
    started = time.perf_counter()
    export_tenant(source, path)
    times["export"].append(time.perf_counter() - started)
    started = time.perf_counter()
    done = import_tenant(path, slug="bench-import")
    times["import"].append(time.perf_counter() - started)
    with scopes_disabled():
        done.tenant.delete(force_drop=True)
    rows = pages({pages})
    target = new("bench-baseline")
    started = time.perf_counter()
    with tenant_context(target), transaction.atomic():
        PageContent.objects.bulk_create(rows)
    times["bulk_create"].append(time.perf_counter() - started)
    with scopes_disabled():
        target.delete(force_drop=True)
with scopes_disabled():
    source.delete(force_drop=True)
print("RESULT " + json.dumps({{k: statistics.median(v) for k, v in times.items()}}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default="row-sqlite,row-postgres,schema")
    args = parser.parse_args()
    base = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/tenantsite")
    server = base.rsplit("/", 1)[0]
    print(f"{args.pages} pages, median of {args.runs} runs")
    print(f"{'mode':<14}{'export':>9}{'read':>9}{'ratio':>7}{'import':>9}{'bulk':>9}{'ratio':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            env = _environment(mode, server, tmp)
            manage(env, "ensure_database")
            manage(env, "migrate", "-v0")
            out = manage(env, "shell", "-c", MEASURE.format(pages=args.pages, runs=args.runs))
            result = json.loads(out.split("RESULT ", 1)[1])
            print(
                f"{mode:<14}{result['export']:>8.2f}s{result['read']:>8.2f}s"
                f"{result['export'] / result['read']:>6.1f}x{result['import']:>8.2f}s"
                f"{result['bulk_create']:>8.2f}s{result['import'] / result['bulk_create']:>6.1f}x"
            )


def _environment(mode: str, server: str, tmp: str) -> dict:
    env = {"TENANCY_AUTO_PROVISION": "false", "TENANCY_SCHEMA_POOL_SIZE": "0"}
    env["MEDIA_ROOT"] = f"{tmp}/media"
    if mode == "row-sqlite":
        return {**env, "TENANCY_MODE": "row", "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3"}
    if mode == "row-postgres":
        owner = subprocess.run(
            [sys.executable, "scripts/postgres_roles.py", f"{server}/tenantsite_exportbench_row"],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return {**env, "TENANCY_MODE": "row", "DATABASE_URL": owner}
    if mode == "schema":
        url = f"{server}/tenantsite_exportbench_schema"
        return {**env, "TENANCY_MODE": "schema", "DATABASE_URL": url}
    raise SystemExit(f"unknown mode {mode!r} (row-sqlite, row-postgres, schema)")


def manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


if __name__ == "__main__":
    main()
