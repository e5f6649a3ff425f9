"""Fleet migrations: `manage.py tenants migrate` against django-tenants' `migrate_schemas`.

Two questions, on N tenant schemas (default 1,000) in a database of their own:

* nothing to apply: how long does a run take that finds every schema up to date?
* one new migration (add a column with a default): how long to apply it to every schema?

Each tool runs as an operator would run it (a `manage.py` process, wall-clock time),
django-tenants with its standard and its multiprocessing executor. Between runs of the second
question the column and its django_migrations row are removed again from every schema, so each
run applies the same migration to all. The fleet command runs --repeat times (median quoted);
django-tenants once per executor (a run of theirs takes about a minute per 1,000 schemas).

    .venv/bin/python benchmarks/fleet_migrate.py                  # 1,000 schemas, ~5 minutes
    .venv/bin/python benchmarks/fleet_migrate.py --schemas 200    # quicker

The database (default: <name of TEST_POSTGRES_URL>_fleetbench) is dropped and created.
"""

from __future__ import annotations

import argparse
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schemas", type=int, default=1000, help="tenant schemas (1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the fleet command (3)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="fleet --jobs")
    parser.add_argument("--database-url", help="database to (re)create for the benchmark")
    parser.add_argument(
        "--skip-django-tenants", action="store_true", help="measure the fleet command only"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database if it has the schemas already"
    )
    args = parser.parse_args()

    url = args.database_url or _default_url()
    env = {
        **os.environ,
        "TENANCY_MODE": "schema",
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "benchmarks.migrate_bench_settings",
        "MIGRATE_BENCH_STAGE": "1",
        "LOG_LEVEL": "ERROR",
    }
    print(f"database: {url}; {args.schemas} tenant schemas; fleet --jobs {args.jobs}")
    _prepare(url, env, args.schemas, args.reuse)

    results = {}
    fleet = ["tenants", "migrate", f"--jobs={args.jobs}"]
    standard = ["migrate_schemas", "--executor=standard", "-v0"]
    multiproc = ["migrate_schemas", "--executor=multiprocessing", "-v0"]

    print("\n# nothing to apply")
    results["noop", "fleet"] = [_timed(env, fleet) for _ in range(args.repeat)]
    if not args.skip_django_tenants:
        results["noop", "standard"] = [_timed(env, standard)]
        results["noop", "multiprocessing"] = [_timed(env, multiproc)]

    print("\n# one new migration: add a column with a default, to every schema")
    env["MIGRATE_BENCH_STAGE"] = "2"
    tools = [("fleet", fleet, args.repeat)]
    if not args.skip_django_tenants:
        tools += [("standard", standard, 1), ("multiprocessing", multiproc, 1)]
    for name, argv, runs in tools:
        results["add column", name] = []
        for _ in range(runs):
            _sql(url, RESET_ADD_COLUMN)
            results["add column", name].append(_timed(env, argv))
            _check_all_have_column(url, args.schemas + 1)

    _report(results, args.schemas)


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


def _timed(env, argv) -> float:
    started = time.perf_counter()
    _manage(env, argv)
    elapsed = time.perf_counter() - started
    print(f"  {' '.join(argv):55s} {elapsed:7.2f}s")
    return elapsed


def _sql(url, statement):
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


def _check_all_have_column(url, expected):
    with psycopg.connect(url) as conn:
        have = conn.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'migrate_bench_app_widget' AND column_name = 'score'"
        ).fetchone()[0]
    if have != expected:
        sys.exit(f"only {have} of {expected} schemas got the column")


def _report(results, schemas):
    print(f"\n## Results, {schemas} tenant schemas (wall-clock seconds of the whole command)\n")
    print("| question | fleet (median) | django-tenants standard | ratio | multiprocessing | ratio |")
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
