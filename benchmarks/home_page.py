"""What does tenancy cost on the home page, and does it grow with the number of tenants?

Row mode (SQLite): the product with 10 and with 10,000 tenants against plain Django (same model
fields, same template, same middleware minus tenancy). Schema mode (PostgreSQL): the product
with 10 and 1,000 tenant schemas against plain Django on PostgreSQL and against django-tenants'
own default path (TenantMainMiddleware + its stock backend). Every figure of a table comes from
the same run, variants interleaved (see benchmarks.inprocess).

Requests rotate over every tenant's host (each one warmed once first; that first, cold request
is reported separately), so a worker serves all tenants, as a real one does.

Two measurements:
* in-process: Django's WSGI handler called directly (all middleware and signals, no server);
* HTTP: gunicorn with one sync worker per variant, loaded from loopback (benchmarks.http_load).

    .venv/bin/python -m benchmarks.home_page [--modes row,schema] [--no-http] ...
"""

from __future__ import annotations

import argparse
import json
import sys
from urllib.parse import urlsplit

from benchmarks import http_load, inprocess, report
from benchmarks.datasets import database_url_with_name, postgres_server_url
from benchmarks.inprocess import ARTIFACTS, Variant


def bench_database(postgres_url: str, suffix: str) -> str:
    """URL of a benchmark database: '<name>_bench_<suffix>' next to the given one."""
    name = urlsplit(postgres_url).path.lstrip("/") or "tenantsite"
    prefix = name if "bench" in name else f"{name}_bench"
    return database_url_with_name(postgres_url, f"{prefix}_{suffix}")


def row_variants(tenant_counts: list[int]) -> list[Variant]:
    sqlite = f"sqlite:///{ARTIFACTS}"
    variants = [
        Variant(
            "plain Django (SQLite)",
            "benchmarks.plain.settings",
            f"{sqlite}/plain.sqlite3",
            "plain",
            1,
            baseline=True,
        ),
    ]
    for n in tenant_counts:
        variants.append(
            Variant(
                f"row mode, {n:,} tenants", "config.settings", f"{sqlite}/row-{n}.sqlite3", "row", n
            )
        )
    return variants


def row_postgres_variants(postgres_url, tenant_counts) -> list[Variant]:
    """Row mode on PostgreSQL with row-level security off and on (the default), beside plain
    Django on PostgreSQL: what the second wall costs (docs/row-level-security.md)."""
    variants = [
        Variant("plain Django (PostgreSQL)", "benchmarks.plain.settings",
                bench_database(postgres_url, "plain"), "plain", 1, baseline=True),
    ]  # fmt: skip
    for n in tenant_counts:
        for rls, suffix in (("false", ""), ("true", "_rls")):
            variants.append(
                Variant(f"row PG, {n:,}, RLS {'on' if rls == 'true' else 'off'}",
                        "config.settings", bench_database(postgres_url, f"row_{n}{suffix}"),
                        "row", n, env={"TENANCY_ROW_LEVEL_SECURITY": rls})
            )  # fmt: skip
    return variants


def schema_variants(
    postgres_url, tenant_counts, django_tenants=True, affinity=False
) -> list[Variant]:
    """Plain Django, the product (default settings) and django-tenants' default path; with
    ``affinity``, also the product with each worker process serving only its share of the
    tenants. What lower TENANCY_CONNECTION_MAX_SCHEMAS values cost is
    benchmarks.schema_memory's question."""
    variants = [
        Variant("plain Django (PostgreSQL)", "benchmarks.plain.settings",
                bench_database(postgres_url, "plain"), "plain", 1, baseline=True),
    ]  # fmt: skip
    for n in tenant_counts:
        database = bench_database(postgres_url, f"schema_{n}")
        variants.append(
            Variant(f"schema mode, {n:,} schemas", "config.settings", database, "schema", n)
        )
    if affinity:
        n = max(tenant_counts)
        variants.append(
            Variant(f"schema, {n:,}, host affinity", "config.settings",
                    bench_database(postgres_url, f"schema_{n}"), "schema", n, split_sites=True)
        )  # fmt: skip
    if django_tenants:
        for n in tenant_counts:
            variants.append(
                Variant(f"django-tenants, {n:,} schemas", "benchmarks.djt.settings",
                        bench_database(postgres_url, f"djt_{n}"), "djt", n)
            )  # fmt: skip
    return variants


def run_group(name, variants, args, port_base) -> dict:
    baseline = next(v.label for v in variants if v.baseline)
    out = {}
    print(f"\n== {name}", file=sys.stderr, flush=True)
    workers = inprocess.start_workers(variants, rebuild=args.rebuild, processes=args.processes)
    try:
        results = inprocess.measure(workers, args.rounds, args.requests)
        for worker in workers:  # after serving every site: what the worker process holds
            results[worker.variant.label].rss_bytes = worker.call("memory")["python"]["VmRSS"]
        title = (
            f"{name}: in-process (Django WSGI handler, no server), {args.processes} processes "
            f"per variant, {args.rounds} rounds x {args.requests} requests each, interleaved"
        )
        print("\n" + report.table(title, results, baseline), flush=True)
        out["in_process"] = report.summary(results, baseline)
        if args.profile:
            profiled = set()
            for worker in workers:
                if worker.variant.baseline or worker.variant.label in profiled:
                    continue
                profiled.add(worker.variant.label)
                slug = worker.variant.label.replace(" ", "-").replace(",", "")
                path = str(ARTIFACTS / f"profile-{slug}.txt")
                worker.call("profile", n=args.requests * 4, path=path)
                print(f"  profile: {path}", file=sys.stderr)
    finally:
        inprocess.stop_workers(workers)
    if args.http:
        served = [v for v in variants if not v.split_sites]  # one gunicorn worker: no shares
        ports = list(range(port_base, port_base + len(served)))
        results = http_load.measure(
            served, ports, args.http_rounds, args.http_requests, args.concurrency
        )
        title = (
            f"{name}: HTTP (gunicorn, 1 sync worker per variant, {args.concurrency} loopback "
            f"clients), {args.http_rounds} rounds x {args.http_requests} requests, interleaved"
        )
        print("\n" + report.table(title, results, baseline), flush=True)
        out["http"] = report.summary(results, baseline)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--modes",
        default="row,schema",
        help="row, schema, row-pg (row mode on PostgreSQL, row-level security off and on)",
    )
    parser.add_argument("--row-tenants", default="10,10000", help="tenant counts, row mode")
    parser.add_argument("--schema-tenants", default="10,1000", help="schema counts, schema mode")
    parser.add_argument("--row-pg-tenants", default="10", help="tenant counts, row mode on PG")
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds (in-process)")
    parser.add_argument("--requests", type=int, default=100, help="requests per batch")
    parser.add_argument(
        "--processes",
        type=int,
        default=3,
        help="worker processes per variant, each with its own hash seed (in-process)",
    )
    parser.add_argument("--no-http", dest="http", action="store_false", help="skip gunicorn")
    parser.add_argument("--http-rounds", type=int, default=20)
    parser.add_argument("--http-requests", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=2, help="HTTP client threads")
    parser.add_argument("--no-django-tenants", dest="django_tenants", action="store_false")
    parser.add_argument(
        "--affinity",
        action="store_true",
        help="schema mode: also the largest size with each process serving only its share of "
        "the tenants (a proxy routing each host to one worker), in-process only",
    )
    parser.add_argument(
        "--postgres",
        default=postgres_server_url(),
        help="server (and name prefix) of the benchmark databases, which are kept between runs",
    )
    parser.add_argument("--port", type=int, default=8200, help="first port for gunicorn")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the benchmark databases")
    parser.add_argument("--profile", action="store_true", help="pyinstrument the tenancy side")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    modes = args.modes.split(",")
    figures = {}
    if "row" in modes:
        counts = [int(n) for n in args.row_tenants.split(",")]
        figures["row"] = run_group("Home page, row mode", row_variants(counts), args, args.port)
    if "schema" in modes:
        counts = [int(n) for n in args.schema_tenants.split(",")]
        variants = schema_variants(args.postgres, counts, args.django_tenants, args.affinity)
        figures["schema"] = run_group("Home page, schema mode", variants, args, args.port + 10)
    if "row-pg" in modes:
        counts = [int(n) for n in args.row_pg_tenants.split(",")]
        variants = row_postgres_variants(args.postgres, counts)
        figures["row-pg"] = run_group("Home page, row mode on PostgreSQL", variants, args,
                                      args.port + 20)  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
