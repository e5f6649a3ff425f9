"""Fleet migrations: `manage.py tenants migrate` against django-tenants' `migrate_schemas`.

Two questions, on N tenant schemas (default 1,000) in a database of their own:

* nothing to apply: how long does a run take that finds every schema up to date?
* one new migration (add a column with a default): how long to apply it to every schema?

Each tool runs as an operator would run it (a `manage.py` process, wall-clock time): the fleet
command over all N schemas, --repeat times (median quoted); django-tenants' migrate_schemas with
its standard and its multiprocessing executor. django-tenants costs one full `migrate` per
schema (minutes per 1,000 on this machine), so to keep the run bounded it migrates a sample of
--sample schemas (and, once, none: its fixed start-up cost), and its time for N is start-up +
(sample run - start-up) x N / sample. --full runs it over all N instead. Between runs of the
second question the column and its django_migrations row are removed from every schema again,
so each run applies the same migration to all. --profile shows where django-tenants' time goes.

    .venv/bin/python benchmarks/fleet_migrate.py                  # 1,000 schemas, ~5 minutes
    .venv/bin/python benchmarks/fleet_migrate.py --schemas 200    # quicker

The database (default: <name of TEST_POSTGRES_URL>_fleetbench) is dropped and created.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RESET_ADD_COLUMN = """
DO $$
DECLARE s text;
BEGIN
  FOR s IN SELECT table_schema FROM information_schema.columns
           WHERE table_name = 'migrate_bench_app_widget' AND column_name = 'score' LOOP
    EXECUTE format('ALTER TABLE %I.migrate_bench_app_widget DROP COLUMN score', s);
    EXECUTE format('DELETE FROM %I.django_migrations WHERE app = ''migrate_bench_app'' '
                   'AND name = ''0002_widget_score''', s);
  END LOOP;
END $$;
"""


# Runs django-tenants' migrate_schemas (standard or multiprocessing executor) on the first
# SAMPLE tenant schemas only: its tenant query is narrowed, nothing else changes.
DT_SAMPLE = """
import types
from django.core.management import call_command
from django_tenants.management.commands import migrate_schemas
from tenants.models import Tenant

schemas = Tenant.objects.exclude(schema_name="public").order_by("schema_name")
sample = list(schemas.values_list("schema_name", flat=True)[:{sample}])
narrowed = Tenant.objects.filter(schema_name__in=sample)
migrate_schemas.get_tenant_model = lambda: types.SimpleNamespace(objects=narrowed)
call_command("migrate_schemas", "--executor={executor}", "-v0")
"""

# The same under cProfile: where the time goes (cumulative time of the functions below).
PROFILED_PARTS = [
    ("system checks", "django/core/management/base.py", "check"),
    ("migration graph loading", "django/db/migrations/loader.py", "build_graph"),
    ("project state rendering", "django/db/migrations/state.py", "render_multiple"),
    ("post_migrate (content types, permissions)", "django/core/management/sql.py",
     "emit_post_migrate_signal"),
    ("django_migrations table check", "django/db/migrations/recorder.py", "ensure_schema"),
    ("new database connection", "django/db/backends/base/base.py", "connect"),
]  # fmt: skip
DT_PROFILE = DT_SAMPLE.replace(
    'call_command("migrate_schemas", "--executor={executor}", "-v0")',
    """
import cProfile, json, pstats
profiler = cProfile.Profile()
profiler.enable()
call_command("migrate_schemas", "--executor={executor}", "-v0", "--tenant")
profiler.disable()
parts, total, queries = {{}}, 0.0, 0
for (path, _, name), (_, calls, own, cumulative, _) in pstats.Stats(profiler).stats.items():
    total += own
    if name == "execute" and path.endswith("psycopg/cursor.py"):
        queries += calls
    for label, suffix, function in {parts}:
        if name == function and path.endswith(suffix):
            parts[label] = parts.get(label, 0.0) + cumulative
print(json.dumps({{"total": total, "parts": parts, "queries": queries}}))
""",
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schemas", type=int, default=1000, help="tenant schemas (1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the fleet command (3)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="fleet --jobs")
    parser.add_argument("--sample", type=int, default=100, help="django-tenants' sample (100)")
    parser.add_argument("--full", action="store_true", help="django-tenants over all schemas")
    parser.add_argument("--profile", action="store_true", help="profile django-tenants too")
    parser.add_argument("--database-url", help="database to (re)create for the benchmark")
    parser.add_argument(
        "--skip-django-tenants", action="store_true", help="measure the fleet command only"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database if it has the schemas already"
    )
    args = parser.parse_args()
    sample = args.schemas if args.full else min(args.sample, args.schemas)

    url = args.database_url or _default_url()
    env = {
        **os.environ,
        "TENANCY_MODE": "schema",
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "tests.support.migrate_stages.settings",
        "MIGRATE_BENCH_STAGE": "1",
        "LOG_LEVEL": "ERROR",
    }
    print(f"database: {url}; {args.schemas} tenant schemas; fleet --jobs {args.jobs}")
    _prepare(url, env, args.schemas, args.reuse)
    fleet = ["tenants", "migrate", f"--jobs={args.jobs}"]
    results = {}
    executors = [] if args.skip_django_tenants else ["standard", "multiprocessing"]

    def django_tenants(executor, schemas):
        if args.full and schemas:
            return _timed(env, ["migrate_schemas", f"--executor={executor}", "-v0"])
        code = DT_SAMPLE.format(sample=schemas, executor=executor)
        return _timed(env, ["shell", "-c", code], f"migrate_schemas {executor}, {schemas} schemas")

    def scaled(first, run, base):
        """All N schemas: the first run (start-up, public) plus N times the per-schema cost."""
        if args.full:
            return [run]
        return [first + (run - base) * args.schemas / sample]

    print("\n# nothing to apply")
    results["noop", "fleet"] = [_timed(env, fleet) for _ in range(args.repeat)]
    base = {}
    for executor in executors:
        base[executor] = django_tenants(executor, 0)
        run = django_tenants(executor, sample)
        results["noop", executor] = scaled(base[executor], run, base[executor])
    if args.profile:
        _profile(env, min(sample, 50))

    print("\n# one new migration: add a column with a default, to every schema")
    env["MIGRATE_BENCH_STAGE"] = "2"
    results["add column", "fleet"] = []
    for _ in range(args.repeat):
        _sql(url, RESET_ADD_COLUMN)
        results["add column", "fleet"].append(_timed(env, fleet))
        _check_have_column(url, args.schemas + 1)
    for executor in executors:
        _sql(url, RESET_ADD_COLUMN)
        first = 0.0 if args.full else django_tenants(executor, 0)  # public gets the column
        run = django_tenants(executor, sample)
        _check_have_column(url, sample + 1)
        results["add column", executor] = scaled(first, run, base[executor])
    _sql(url, RESET_ADD_COLUMN)
    _report(results, args.schemas, sample)


def _profile(env, schemas):
    code = DT_PROFILE.format(sample=schemas, executor="standard", parts=PROFILED_PARTS)
    done = _manage(env, ["shell", "-c", code])
    data = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\n## Where django-tenants' time goes ({schemas} schemas, nothing to apply)\n")
    print("| part | ms per schema |")
    print("|---|---|")
    for label, seconds in sorted(data["parts"].items(), key=lambda kv: -kv[1]):
        print(f"| {label} | {seconds / schemas * 1000:.1f} |")
    print(f"| all (profiled) | {data['total'] / schemas * 1000:.1f} |")
    print(f"| SQL queries | {data['queries'] / schemas:.0f} per schema |")


def _default_url() -> str:
    base = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/tenantsite")
    return base.rsplit("/", 1)[0] + "/" + base.rsplit("/", 1)[1] + "_fleetbench"


def _admin_url(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


def _prepare(url, env, schemas, reuse):
    name = url.rsplit("/", 1)[1]
    if reuse and _count_bench_schemas(url) == schemas:
        print(f"reusing {name}")
        return
    with psycopg.connect(_admin_url(url), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    started = time.perf_counter()
    _manage(env, ["migrate_schemas", "--shared", "-v0"])
    _manage(env, ["create_bench_tenants", str(schemas), "--jobs=2"])
    print(f"created {schemas} tenant schemas in {time.perf_counter() - started:.0f}s")


def _count_bench_schemas(url) -> int:
    try:
        with psycopg.connect(url) as conn:
            return conn.execute(
                "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'bench\\_%'"
            ).fetchone()[0]
    except psycopg.OperationalError:
        return -1


def _manage(env, argv):
    done = subprocess.run(
        [PYTHON, "manage.py", *argv], cwd=REPO, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"manage.py {' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def _timed(env, argv, label=None) -> float:
    started = time.perf_counter()
    _manage(env, argv)
    elapsed = time.perf_counter() - started
    print(f"  {label or ' '.join(argv):55s} {elapsed:7.2f}s")
    return elapsed


def _sql(url, statement):
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


def _check_have_column(url, expected):
    with psycopg.connect(url) as conn:
        have = conn.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'migrate_bench_app_widget' AND column_name = 'score'"
        ).fetchone()[0]
    if have != expected:
        sys.exit(f"{have} schemas have the column, not {expected}")


def _report(results, schemas, sample):
    scaled = f", django-tenants scaled from {sample}" if sample < schemas else ""
    print(f"\n## {schemas} tenant schemas (wall-clock time of the whole command{scaled})\n")
    print(
        "| question | fleet (median) | django-tenants standard | ratio | multiprocessing | ratio |"
    )
    print("|---|---|---|---|---|---|")
    for question in ("noop", "add column"):
        ours = statistics.median(results[question, "fleet"])
        cells = [
            "nothing to apply" if question == "noop" else "add a column",
            f"{ours:.2f}s ({ours / schemas * 1000:.1f} ms/schema)",
        ]
        for tool in ("standard", "multiprocessing"):
            theirs = results.get((question, tool))
            if theirs:
                value = statistics.median(theirs)
                cells += [
                    f"{value:.1f}s ({value / schemas * 1000:.0f} ms/schema)",
                    f"{value / ours:.0f}x",
                ]
            else:
                cells += ["-", "-"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
