"""How big may a cell (one PostgreSQL server) get?

One private PostgreSQL server, started here, holds four databases: schema mode with 10 and with
--schemas tenant schemas (default 10,000), row mode (row-level security on) with 10 and with
--row-tenants tenants (default 100,000); benchmarks.datasets builds them (schemas cloned from
one migrated template by psql, rows inserted in bulk). Its data directory is kept in
artifacts/bench/pg-cells, so the slow build happens once. Then, each at the big size against
the 10-tenant database measured in the same run:

* home:      home page req/s in-process, requests rotating over every tenant (benchmarks.inprocess;
             at 10,000 almost every request is a tenant its connection has not seen yet);
* provision: one sign-up's service call (provision_tenant_for_user, spare pool off), p50 of
             --samples; the tenants made are deleted again, so the cell stays at its size;
* migrate:   schema mode: `manage.py tenants migrate` with nothing to apply and with one new
             migration adding a column to a tenant model (tests/support/migrate_stages);
* memory:    a connection's server process (PSS and RSS from /proc, pg_backend_memory_contexts)
             after serving N tenants' home pages, with no ceiling and with the default
             TENANCY_CONNECTION_MAX_SCHEMAS;
* dump:      one tenant exported: `pg_dump -n SCHEMA` (schema mode); row mode: `COPY (SELECT ...
             WHERE tenant_id = X)` of every table with a tenant column, its tenant and domains;
* catalog:   pg_class rows, pg_catalog's size, database size.

Needs the PostgreSQL server binaries (initdb, pg_ctl). Run it niced on a shared machine:

    nice -n 10 .venv/bin/python -m benchmarks.cell_scale [--schemas 10000] [--row-tenants 100000]
        [--only home,provision,migrate,memory,dump,catalog] [--port 9000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import psycopg
import psycopg.sql

from benchmarks import inprocess, report
from benchmarks.home_page import bench_database
from benchmarks.inprocess import ARTIFACTS, ROOT, Variant
from benchmarks.postgres_files import run_server_command, server_binary

DATA = ARTIFACTS / "pg-cells"
QUESTIONS = ("catalog", "home", "provision", "migrate", "memory", "dump")
SERVER_SETTINGS = {
    "shared_buffers": "256MB",
    "max_connections": "100",
    "max_files_per_process": "10000",  # as docs/operations.md advises for many schemas
}
MB = 2**20


# --- the private server -------------------------------------------------------------------------


def start_server(port: int) -> str:
    """Start the kept cluster (initdb on first use); its server URL (database ``tenantsite``)."""
    if not (DATA / "PG_VERSION").exists():
        DATA.mkdir(parents=True, exist_ok=True)
        if os.getuid() == 0:
            import shutil

            shutil.chown(DATA, "postgres")
        run_server_command(
            server_binary("initdb"), "-D", str(DATA), "-A", "trust", "-U", "postgres"
        )
    options = " ".join(
        [f"-c port={port}", "-c listen_addresses=127.0.0.1", f"-c unix_socket_directories={DATA}"]
        + [f"-c {name}={value}" for name, value in SERVER_SETTINGS.items()]
    )
    if not (DATA / "postmaster.pid").exists():
        log = str(DATA / "server.log")
        run_server_command(
            server_binary("pg_ctl"), "-D", str(DATA), "-o", options, "-l", log, "-w", "start"
        )
    return f"postgres://postgres@127.0.0.1:{port}/tenantsite"


def stop_server() -> None:
    if (DATA / "postmaster.pid").exists():
        run_server_command(server_binary("pg_ctl"), "-D", str(DATA), "-m", "fast", "-w", "stop")


def sql(url: str, query: str, params=None):
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


# --- the four databases -------------------------------------------------------------------------


def cell_variants(server: str, schemas: int, row_tenants: int) -> dict[str, Variant]:
    """small/big x schema/row; the small one of each mode is its baseline."""
    out = {}
    for n, size in ((10, "small"), (schemas, "big")):
        out["schema", size] = Variant(
            f"schema mode, {n:,} schemas", "config.settings",
            bench_database(server, f"schema_{n}"), "schema", n, baseline=size == "small",
        )  # fmt: skip
    for n, size in ((10, "small"), (row_tenants, "big")):
        out["row", size] = Variant(
            f"row mode (RLS), {n:,} tenants", "config.settings",
            bench_database(server, f"row_{n}_rls"), "row", n, baseline=size == "small",
            env={"TENANCY_ROW_LEVEL_SECURITY": "true"},
        )  # fmt: skip
    return out


def build(variants: dict[str, Variant]) -> None:
    """Make (or find) every database; the time each build took goes to the log."""
    for variant in variants.values():
        started = time.monotonic()
        workers = inprocess.start_workers([variant])
        inprocess.stop_workers(workers)
        print(f"  {variant.label}: ready in {time.monotonic() - started:.0f} s", flush=True)


# --- questions ----------------------------------------------------------------------------------


def catalog(variants) -> dict:
    out = {}
    print("\n## Catalog")
    print(
        f"  {'database':<34}{'pg_class':>10}{'pg_attribute':>14}{'pg_catalog':>12}{'database':>11}"
    )
    for variant in variants.values():
        (row,) = sql(
            variant.database_url,
            "SELECT (SELECT count(*) FROM pg_class), (SELECT count(*) FROM pg_attribute), "
            "(SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            " JOIN pg_namespace n ON n.oid = c.relnamespace "
            " WHERE n.nspname = 'pg_catalog' AND c.relkind IN ('r', 't', 'm')), "
            "pg_database_size(current_database())",
        )
        out[variant.label] = dict(
            zip(("pg_class", "pg_attribute", "catalog", "database"), row, strict=True)
        )
        print(
            f"  {variant.label:<34}{row[0]:>10,}{row[1]:>14,}{row[2] / MB:>10.0f}MB"
            f"{row[3] / MB:>9.0f}MB"
        )
    return out


def home(variants, args) -> dict:
    """The four databases, and the big ones again with traffic on fewer of their tenants (the
    10-tenant databases' traffic, and a worker's ceiling's worth): size apart from coldness.
    All interleaved; two tables, each against its mode's 10-tenant database."""
    group, strides = list(variants.values()), {}
    if args.warm:  # warming every one of 10,000 or 100,000 tenants: too long, and moot
        group = [v for v in group if v.baseline]
    for mode in ("schema", "row"):
        big = variants[mode, "big"]
        for active in args.active:
            if active < big.tenants:
                label = f"{big.label}, {active:,} active"
                group.append(Variant(label, big.settings, big.database_url, big.kind,
                                     big.tenants, big.env))  # fmt: skip
                strides[label] = big.tenants // active
    workers = _start_workers(group, args.processes, strides)
    try:
        results = inprocess.measure(workers, args.rounds, args.requests, warm=args.warm)
    finally:
        inprocess.stop_workers(workers)
    out = {}
    for mode in ("schema", "row"):
        small = variants[mode, "small"].label
        subset = {v.label: results[v.label] for v in group if v.kind == mode}
        title = (
            f"\n## Home page, {mode} mode: in-process, {args.processes} processes x "
            f"{args.rounds} rounds x {args.requests} requests, rotating over every (active) "
            f"tenant, {'each warmed first, ' if args.warm else ''}interleaved "
            "('+% vs plain' is vs the 10-tenant database here)"
        )
        print(report.table(title, subset, small), flush=True)
        out[mode] = report.summary(subset, small)
    return out


def _start_workers(group, processes: int, strides: dict[str, int]):
    """inprocess.start_workers, but a variant in ``strides`` serves every stride-th tenant only."""
    workers = []
    try:
        for variant in group:
            stride = strides.get(variant.label)
            for i in range(processes):
                worker = inprocess.WorkerProcess(variant, hash_seed=i + 1)
                workers.append(worker)
                worker.call("prepare", kind=variant.kind, tenants=variant.tenants,
                            share=(0, stride) if stride else None)  # fmt: skip
    except BaseException:
        inprocess.stop_workers(workers)
        raise
    return workers


def _child(variant: Variant, task: str, **options) -> dict:
    """Run ``task`` (a function of this module's child side) in a Django process of ``variant``."""
    env = variant.environment()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.cell_scale", "--child", task, json.dumps(options)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"{variant.label}: {task} failed\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def provision(variants, args) -> dict:
    out = {}
    print(f"\n## Provisioning: provision_tenant_for_user, spare pool off, {args.samples} samples")
    print(f"  {'database':<34}{'p50 ms':>9}{'min':>8}{'max':>8}{'x 10':>7}")
    for mode in ("schema", "row"):
        base = None
        for size in ("small", "big"):
            variant = variants[mode, size]
            timings = _child(variant, "provision", samples=args.samples)["ms"]
            p50 = statistics.median(timings)
            base = base or p50
            out[variant.label] = {"p50_ms": p50, "samples_ms": timings}
            print(
                f"  {variant.label:<34}{p50:>9.0f}{min(timings):>8.0f}{max(timings):>8.0f}"
                f"{p50 / base:>7.2f}",
                flush=True,
            )
    return out


def _reset_add_column(url: str) -> None:
    """Remove the column added by stage 2 and its migration record from every schema again, a
    transaction per schema (one for 10,000 would need more locks than the server has)."""
    with psycopg.connect(url, autocommit=True) as conn:
        schemas = conn.execute(
            "SELECT table_schema FROM information_schema.columns "
            "WHERE table_name = 'migrate_bench_app_widget' AND column_name = 'score'"
        ).fetchall()
        for (schema,) in schemas:
            with conn.transaction():
                name = psycopg.sql.Identifier(schema)
                conn.execute(
                    psycopg.sql.SQL("ALTER TABLE {}.migrate_bench_app_widget DROP COLUMN score")
                    .format(name)
                )  # fmt: skip
                conn.execute(
                    psycopg.sql.SQL(
                        "DELETE FROM {}.django_migrations WHERE app = 'migrate_bench_app' "
                        "AND name = '0002_widget_score'"
                    ).format(name)
                )


def _fleet_migrate(variant: Variant, stage: int, jobs: int) -> float:
    env = {
        **variant.environment(),
        "DJANGO_SETTINGS_MODULE": "tests.support.migrate_stages.settings",
        "MIGRATE_BENCH_STAGE": str(stage),
        "LOG_LEVEL": "ERROR",
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "manage.py", "tenants", "migrate", f"--jobs={jobs}"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"tenants migrate failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    elapsed = time.perf_counter() - started
    print(f"    {variant.label}, stage {stage}: {elapsed:.1f} s", file=sys.stderr, flush=True)
    return elapsed


def _columns(url: str) -> int:
    return sql(
        url,
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'migrate_bench_app_widget' AND column_name = 'score'",
    )[0][0]


def migrate(variants, args) -> dict:
    """Schema mode. The first stage-1 run creates the staged app's table in every schema (once
    per database, then kept); then no-op runs, then add-a-column runs (the column removed again
    before each)."""
    out = {}
    print(f"\n## Fleet migration, schema mode: `tenants migrate --jobs={args.jobs}`, wall clock")
    print(f"  {'database':<34}{'first: new table':>17}{'nothing to apply':>18}{'add a column':>14}")
    base = {}
    for size in ("small", "big"):
        variant = variants["schema", size]
        url = variant.database_url
        _reset_add_column(url)
        first = _fleet_migrate(variant, 1, args.jobs)
        noop = [_fleet_migrate(variant, 1, args.jobs) for _ in range(args.migrate_repeat)]
        add = []
        for _ in range(args.migrate_repeat):
            _reset_add_column(url)
            add.append(_fleet_migrate(variant, 2, args.jobs))
            schemas = sql(url, "SELECT count(*) FROM tenants_tenant")[0][0]
            if _columns(url) < schemas:
                sys.exit(f"{variant.label}: {_columns(url)} schemas have the column, {schemas}")
        _reset_add_column(url)
        row = {"first_s": first, "noop_s": statistics.median(noop), "add_s": statistics.median(add)}
        row.update(noop_runs=noop, add_runs=add)
        base = base or row
        out[variant.label] = row
        noop_ratio, add_ratio = row["noop_s"] / base["noop_s"], row["add_s"] / base["add_s"]
        print(
            f"  {variant.label:<34}{first:>16.1f}s{row['noop_s']:>11.1f}s (x{noop_ratio:.1f})"
            f"{row['add_s']:>8.1f}s (x{add_ratio:.1f})",
            flush=True,
        )
    return out


def _pss(pid: int) -> int:
    """Proportional set size of a process in bytes (/proc/PID/smaps_rollup)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def memory(variants, args) -> dict:
    """One worker, one connection, serving tenants 1..N once each; the server process at
    checkpoints (schema mode without a ceiling and with the default one; row mode).
    CONN_MAX_AGE is raised so that only the ceiling recycles the connection."""
    out = {}
    big, row = variants["schema", "big"], variants["row", "big"]
    long_lived = {"CONN_MAX_AGE": "36000"}
    cases = [
        Variant(f"{big.label}, no ceiling", big.settings, big.database_url, "schema",
                big.tenants, env={**long_lived, "TENANCY_CONNECTION_MAX_SCHEMAS": "0"}),
        Variant(f"{big.label}, default ceiling", big.settings, big.database_url, "schema",
                big.tenants, env=long_lived),
        Variant(row.label, row.settings, row.database_url, "row", row.tenants,
                {**row.env, **long_lived}),
    ]  # fmt: skip
    limit = min(args.memory_tenants, big.tenants)
    checkpoints = [c for c in (1, 10, 100, 1000, 2500, 5000, 10000) if c < limit] + [limit]
    print("\n## Memory of one connection's server process after serving N tenants' home pages")
    print(f"  {'case':<46}{'N':>7}{'RSS':>9}{'RssAnon':>9}{'PSS':>9}{'contexts':>10}{'conns':>6}")
    for case in cases:
        workers = inprocess.start_workers([case])
        try:
            rows = _sweep(workers[0], checkpoints)
        finally:
            inprocess.stop_workers(workers)
        out[case.label] = rows
        for r in rows:
            contexts = f"{r['contexts'] / MB:>8.1f}MB" if r.get("contexts") else f"{'-':>10}"
            print(
                f"  {case.label:<46}{r['tenants']:>7,}{r['rss'] / MB:>7.1f}MB"
                f"{r['anon'] / MB:>7.1f}MB{r['pss'] / MB:>7.1f}MB{contexts}{r['connections']:>6}",
                flush=True,
            )
    return out


def _sweep(worker, checkpoints) -> list[dict]:
    """benchmarks.schema_memory.memory_sweep, with the server process's PSS read at once."""
    worker.call("close_connections")
    worker.call("sample_backends", enable=True)
    rows, served = [], 0
    for checkpoint in checkpoints:
        worker.call("run", n=checkpoint - served, start=served)
        served = checkpoint
        sample = worker.call("memory")
        backend = sample.get("backend", {})
        rows.append(
            {
                "tenants": checkpoint,
                "rss": backend.get("VmRSS", 0),
                "anon": backend.get("RssAnon", 0),
                "pss": _pss(backend["pid"]) if backend.get("pid") else 0,
                "contexts": backend.get("contexts"),
                "connections": sample["backends_seen"],
            }
        )
    worker.call("sample_backends", enable=False)
    return rows


def dump(variants, args) -> dict:
    """One tenant out: the middle one of each database, --dump-repeat times; median time, size."""
    out = {}
    print("\n## One tenant exported (median wall clock, output size)")
    print(f"  {'database':<34}{'how':<30}{'time':>9}{'x 10':>7}{'size':>10}")
    for mode in ("schema", "row"):
        base = None
        for size in ("small", "big"):
            variant = variants[mode, size]
            slug = f"t{max(1, variant.tenants // 2):05d}"
            runs = [_dump_once(variant, slug) for _ in range(args.dump_repeat)]
            seconds = statistics.median(r[0] for r in runs)
            base = base or seconds
            how = f"pg_dump -Fc -n {slug}" if mode == "schema" else "COPY ... WHERE tenant_id"
            out[variant.label] = {"how": how, "seconds": seconds, "bytes": runs[0][1]}
            print(
                f"  {variant.label:<34}{how:<30}{seconds:>8.2f}s{seconds / base:>7.1f}"
                f"{runs[0][1] / 1024:>8.0f}kB",
                flush=True,
            )
    return out


def _dump_once(variant: Variant, slug: str) -> tuple[float, int]:
    path = ARTIFACTS / "cell-dump.out"
    url = variant.database_url
    started = time.perf_counter()
    if variant.kind == "schema":
        subprocess.run(["pg_dump", "--dbname", url, "-Fc", "-n", slug, "-f", str(path)], check=True)
    else:
        _copy_tenant_rows(url, slug, path)
    seconds = time.perf_counter() - started
    size = path.stat().st_size
    path.unlink()
    return seconds, size


def _copy_tenant_rows(url: str, slug: str, path) -> None:
    """Row mode's pg_dump of one tenant: every public table with a tenant_id column, filtered,
    plus the tenant's own row and its domains; COPY text format, one connection, one snapshot."""
    with psycopg.connect(url) as conn, open(path, "wb") as out:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        (pk,) = conn.execute("SELECT id FROM tenants_tenant WHERE slug = %s", [slug]).fetchone()
        tables = [
            t for (t,) in conn.execute(
                "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
                "AND column_name = 'tenant_id' ORDER BY table_name"
            )
        ]  # fmt: skip
        queries = [f"SELECT * FROM tenants_tenant WHERE id = {pk}"]
        queries += [f'SELECT * FROM "{t}" WHERE tenant_id = {pk}' for t in tables]
        for query in queries:
            out.write(f"-- {query}\n".encode())
            with conn.cursor().copy(f"COPY ({query}) TO STDOUT") as copy:
                for data in copy:
                    out.write(data)


# --- child side: runs inside Django with a variant's settings ---------------------------------


def child_provision(samples: int) -> dict:
    """p50 of provision_tenant_for_user (one warm-up first, not counted); the tenants and users
    made are deleted again."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import override_settings

    from tenants.operations.lifecycle import delete_tenant
    from tenants.provisioning.services import provision_tenant_for_user
    from tenants.runtime.context import scopes_disabled

    User = get_user_model()
    timings, made = [], []
    stamp = int(time.time())
    for i in range(samples + 1):
        with override_settings(TENANCY_AUTO_PROVISION=False):
            user = User.objects.create_user(f"cell-{stamp}-{i}", f"c{stamp}{i}@example.com", None)
        started = time.perf_counter()
        made.append((user, provision_tenant_for_user(user)))
        if i:
            timings.append((time.perf_counter() - started) * 1000)
    for user, result in made:
        tenant = getattr(result, "tenant", result)
        delete_tenant(tenant, drop_schema=True)
        with scopes_disabled():
            user.delete()
    return {"ms": timings}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schemas", type=int, default=10000)
    parser.add_argument("--row-tenants", type=int, default=100000)
    parser.add_argument("--only", default=",".join(QUESTIONS), help=",".join(QUESTIONS))
    parser.add_argument("--build-only", action="store_true", help="make the databases, stop")
    parser.add_argument("--port", type=int, default=9000, help="the private server's port")
    parser.add_argument("--keep-server", action="store_true", help="leave the server running")
    parser.add_argument("--processes", type=int, default=2, help="home: processes per variant")
    parser.add_argument("--rounds", type=int, default=15, help="home: interleaved rounds")
    parser.add_argument("--requests", type=int, default=100, help="home: requests per batch")
    parser.add_argument(
        "--active",
        default="10,1000",
        type=lambda text: [int(n) for n in text.split(",") if n],
        help="home: the big databases again, with traffic on this many of their tenants",
    )
    parser.add_argument(
        "--warm",
        action="store_true",
        help="home: serve each active tenant once before measuring (the big databases' "
        "all-tenant variants are left out)",
    )
    parser.add_argument("--samples", type=int, default=7, help="provision: sign-ups timed")
    parser.add_argument("--jobs", type=int, default=2, help="migrate: tenants migrate --jobs")
    parser.add_argument("--migrate-repeat", type=int, default=3)
    parser.add_argument("--memory-tenants", type=int, default=10000)
    parser.add_argument("--dump-repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        task, options = args.child
        print(json.dumps(globals()[f"child_{task}"](**json.loads(options))))
        return

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    server = start_server(args.port)
    try:
        variants = cell_variants(server, args.schemas, args.row_tenants)
        build(variants)
        if args.build_only:
            return
        (version,) = sql(server.rsplit("/", 1)[0] + "/postgres", "SHOW server_version")[0]
        print(f"PostgreSQL {version}, {SERVER_SETTINGS}, data in {DATA.relative_to(ROOT)}")
        figures = {}
        for question in args.only.split(","):
            started = time.monotonic()
            if question == "catalog":
                figures[question] = catalog(variants)
            else:
                figures[question] = globals()[question](variants, args)
            print(f"  ({question}: {time.monotonic() - started:.0f} s)", flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(figures, f, indent=2, default=str)
    finally:
        if not args.keep_server:
            stop_server()


if __name__ == "__main__":
    main()
