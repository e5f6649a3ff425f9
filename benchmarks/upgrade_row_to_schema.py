"""The upgrade from row mode to schema mode: how long for a site of N tenants?

Builds a row-mode SQLite site (the demo tenants plus N tenants with --pages pages and
--members members each), then times `manage.py upgrade_to_schema_mode` into a new PostgreSQL
database: the dry run, the upgrade (schemas, rows, verification), and a rerun (nothing left to
write: verification only).

Baseline, measured in the same run: making tenant schemas the way django-tenants does
(`create_schema()`: CREATE SCHEMA and a full `migrate` of it) for --sample schemas, scaled to
N. That is only the provisioning part of an upgrade (no rows copied, nothing verified), so the
ratio understates the difference.

    .venv/bin/python benchmarks/upgrade_row_to_schema.py               # 100 tenants
    .venv/bin/python benchmarks/upgrade_row_to_schema.py --tenants 500
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
BASELINE = """
import time
from tenants.models import Tenant
started = time.perf_counter()
for n in range({sample}):
    Tenant(schema_name=f"baseline_{{n}}").create_schema(verbosity=0)
print(time.perf_counter() - started)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--sample", type=int, default=10, help="baseline schemas (10)")
    parser.add_argument("--database-url", help="target database to (re)create")
    args = parser.parse_args()
    base = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/tenantsite")
    target = args.database_url or f"{base}_upgradebench"
    server, name = target.rsplit("/", 1)

    with tempfile.TemporaryDirectory() as tmp:
        source = f"sqlite:///{tmp}/site.sqlite3"
        started = time.perf_counter()
        manage(source, "row", "migrate", "-v0")
        manage(source, "row", "seed_demo_tenants")
        manage(
            source, "row", "create_bench_tenants", str(args.tenants),
            f"--pages={args.pages}", f"--members={args.members}", "--password=bench pass 123",
        )  # fmt: skip
        with sqlite3.connect(f"{tmp}/site.sqlite3") as conn:
            total = sum(
                conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("tenants_tenant", "tenants_domain", "auth_user",
                              "accounts_membership", "home_pagecontent")
            )  # fmt: skip
        print(
            f"source: {args.tenants + 5} tenants, {total} rows "
            f"(made in {time.perf_counter() - started:.0f}s)"
        )
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        dry = timed(source, target, "--dry-run")
        upgrade = timed(source, target)
        rerun = timed(source, target)
        baseline_run = manage(target, "schema", "shell", "-c", BASELINE.format(sample=args.sample))
        per_schema = float(baseline_run.stdout.strip().splitlines()[-1]) / args.sample
        with psycopg.connect(target, autocommit=True) as conn:
            for n in range(args.sample):
                conn.execute(f'DROP SCHEMA IF EXISTS "baseline_{n}" CASCADE')
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    schemas = args.tenants + 4  # the default tenant lives in public
    baseline = per_schema * schemas
    print(f"\n## Upgrade of {args.tenants + 5} tenants, {total} rows (SQLite source)\n")
    print("| step | time | per tenant schema |")
    print("|---|---|---|")
    print(f"| dry run | {dry:.1f}s | |")
    each = upgrade / schemas * 1000
    print(f"| upgrade: schemas, rows, verification | {upgrade:.1f}s | {each:.0f} ms |")
    print(f"| rerun: verification only | {rerun:.1f}s | |")
    print(
        f"| baseline: django-tenants create_schema only ({args.sample} sampled, scaled) "
        f"| {baseline:.1f}s | {per_schema * 1000:.0f} ms |"
    )
    print(f"\nupgrade vs baseline provisioning alone: {baseline / upgrade:.1f}x faster")


def manage(database_url, mode, *argv):
    env = {**os.environ, "TENANCY_MODE": mode, "DATABASE_URL": database_url}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "manage.py", *argv], cwd=REPO, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"manage.py {' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def timed(source, target, *extra) -> float:
    started = time.perf_counter()
    manage(target, "schema", "upgrade_to_schema_mode", "--source", source, *extra)
    elapsed = time.perf_counter() - started
    print(f"  upgrade_to_schema_mode {' '.join(extra):12s} {elapsed:6.1f}s")
    return elapsed


if __name__ == "__main__":
    main()
