"""How long provisioning a tenant takes, by every path, at 10 and at 1,000 existing tenants.

    .venv/bin/python benchmarks/provisioning.py            # a few minutes
    .venv/bin/python benchmarks/provisioning.py --quick    # smaller fleet and fewer samples

Provisioning is timed from the user row existing to a committed, live site (tenant, schema,
domain, starter content, owner's admin access), as
``tenants.provisioning.services.provision_tenant_for_user`` does it, in:

* schema mode (PostgreSQL): ours from the spare pool, ours by the template script (pool empty),
  and, in the same run and database, django-tenants' default path (``auto_create_schema``
  running every migration) and its clone path (``TENANT_BASE_SCHEMA`` + ``clone_schema``);
* row mode, on SQLite and on PostgreSQL (row-level security on, its default there; and off:
  ``--modes row-postgres,row-postgres-no-rls``).

Beside it, the whole sign-up request (``POST /api/register/``, with Django's deliberately slow
PBKDF2 hash) and the hash alone. Each mode runs in a subprocess on a fresh database:
``<name>_bench_<mode>`` on the server of ``BENCH_POSTGRES_URL`` (default: that of
``TEST_POSTGRES_URL``, else postgres://postgres@127.0.0.1:5432/tenantsite), dropped afterwards.
Medians (p50) and 95th percentiles in milliseconds; ratios are to our p50 in the same run.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
SUPPORT = Path(__file__).with_name("_provisioning_support.py")


def postgres_base():
    return os.environ.get(
        "BENCH_POSTGRES_URL",
        os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/tenantsite"),
    )


def recreate(url, drop_only=False):
    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        if not drop_only:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def run_mode(label, mode, database_url, options, extra_env=None):
    print(f"== {label}", file=sys.stderr, flush=True)
    env = {
        **os.environ,
        **(extra_env or {}),
        "TENANCY_MODE": mode,
        "DATABASE_URL": database_url,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "TENANCY_SCHEMA_POOL_REFILL": "command",  # no background work while timing
        "CACHE_URL": "locmemcache://",
        "LOG_LEVEL": "ERROR",
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(SUPPORT), json.dumps(options)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        sys.exit(f"{label} failed (exit {done.returncode})")
    print(f"   ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def row(label, stats, baseline=None):
    ratio = f"{stats['p50'] / baseline:8.1f}x" if baseline else " " * 9
    return f"  {label:<46} {stats['p50']:9.1f} {stats['p95']:9.1f} {ratio}   n={stats['n']}"


def report(title, results, ours_key, others):
    print(f"\n{title}")
    print(f"  {'path':<46} {'p50 ms':>9} {'p95 ms':>9} {'vs ours':>9}")
    for size, at in results.items():
        ours = at[ours_key]
        print(f" at {at['existing']} existing tenants (fleet target {size}):")
        print(row(f"ours: {others[ours_key]}", ours))
        if "from_pool" in ours:
            print(f"  {'':<46} ({ours['from_pool']} of {ours['n']} from the pool)")
        for key, label in others.items():
            if key != ours_key and key in at:
                print(row(label, at[key], ours["p50"]))
        sign_up = at["sign_up"]
        print(row("whole sign-up request (POST /api/register/)", sign_up["request"]))
        print(row("  of which the PBKDF2 password hash", sign_up["hash"]))


def _run_on_fresh_database(title, tenancy_mode, url, options, extra_env=None):
    """run_mode() on a new database: a temporary SQLite file when ``url`` is None."""
    if url is None:
        with tempfile.TemporaryDirectory() as tmp:
            return run_mode(title, tenancy_mode, f"sqlite:///{tmp}/bench.sqlite3", options)
    recreate(url)
    try:
        return run_mode(title, tenancy_mode, url, options, extra_env)
    finally:
        recreate(url, drop_only=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fleet of 10 and 200, fewer samples")
    parser.add_argument("--sizes", help="comma-separated fleet sizes (default 10,1000)")
    parser.add_argument("--samples", type=int, help="samples of our paths (default 40)")
    parser.add_argument("--baseline-samples", type=int, help="django-tenants samples (default 10)")
    parser.add_argument("--request-samples", type=int, help="sign-up requests (default 8)")
    parser.add_argument("--modes", default="schema,row-sqlite,row-postgres")
    args = parser.parse_args()
    sizes = args.sizes or ("10,200" if args.quick else "10,1000")
    options = {
        "sizes": [int(s) for s in sizes.split(",")],
        "samples": args.samples or (15 if args.quick else 40),
        "baseline_samples": args.baseline_samples or (5 if args.quick else 10),
        "request_samples": args.request_samples or (4 if args.quick else 8),
    }
    base = postgres_base().rsplit("/", 1)
    modes = args.modes.split(",")
    print(f"Provisioning benchmark: {options}", file=sys.stderr)
    row_labels = {"ours_row": "tenant, domain, content, membership"}
    runs = [
        # (--modes name, title, TENANCY_MODE, database, baseline key, labels)
        (
            "schema",
            "Schema mode (PostgreSQL)",
            "schema",
            f"{base[0]}/{base[1]}_bench_schema",
            "ours_spare",
            {
                "ours_spare": "spare schema from the pool (renamed)",
                "ours_script": "ours: template script (pool empty)",
                "django_tenants_migrate": "django-tenants: auto_create_schema (migrations)",
                "django_tenants_clone": "django-tenants: TENANT_BASE_SCHEMA clone_schema",
            },
        ),
        ("row-sqlite", "Row mode (SQLite)", "row", None, "ours_row", row_labels),
        (
            "row-postgres",
            "Row mode (PostgreSQL, row-level security on: the default)",
            "row",
            f"{base[0]}/{base[1]}_bench_row",
            "ours_row",
            row_labels,
        ),
        (
            "row-postgres-no-rls",
            "Row mode (PostgreSQL, TENANCY_ROW_LEVEL_SECURITY=false)",
            "row",
            f"{base[0]}/{base[1]}_bench_row_norls",
            "ours_row",
            row_labels,
        ),
    ]
    for name, title, tenancy_mode, url, baseline, labels in runs:
        if name not in modes:
            continue
        rls = {"TENANCY_ROW_LEVEL_SECURITY": "false"} if name.endswith("no-rls") else {}
        results = _run_on_fresh_database(title, tenancy_mode, url, options, rls)
        report(f"{title}: provisioning, user row -> committed live site", results, baseline, labels)


if __name__ == "__main__":
    main()
