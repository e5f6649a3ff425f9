"""Schema mode: how much memory does a worker and its database connection hold after serving
many tenants, what does TENANCY_CONNECTION_MAX_SCHEMAS bound it to, and what does that cost?

A PostgreSQL server process caches catalog entries (relations, indexes, types) for every schema
it touches and keeps them for the life of the connection. Each variant's worker serves the home
page of 1,000 different tenants, one after the other, on one persistent connection
(CONN_MAX_AGE), and reports at checkpoints:

* the connection's server process (found by its pid): RSS as ``ps`` shows it, and its private
  (anonymous) part, which leaves out shared buffers it has mapped; the peak is sampled at the end
  of every request, before Django may recycle the connection;
* the Python worker's own RSS.

Then the same variants serve the home page in interleaved rounds rotating over all 1,000
tenants (as benchmarks.home_page does) for the throughput cost of recycling.

    .venv/bin/python -m benchmarks.schema_memory [--tenants 1000] [--ceilings 0,100,500]
"""

from __future__ import annotations

import argparse
import sys

from benchmarks import inprocess, report
from benchmarks.datasets import postgres_server_url
from benchmarks.home_page import bench_database
from benchmarks.inprocess import Variant

MB = 1024 * 1024


def variants(postgres_url: str, tenants: int, ceilings: list[int], django_tenants: bool):
    schema_db = bench_database(postgres_url, f"schema_{tenants}")
    out = [
        Variant("plain Django (PostgreSQL)", "benchmarks.plain.settings",
                bench_database(postgres_url, "plain"), "plain", 1, baseline=True),
    ]  # fmt: skip
    for ceiling in ceilings:
        label = f"schema mode, ceiling {ceiling}" if ceiling else "schema mode, no ceiling"
        out.append(
            Variant(label, "config.settings", schema_db, "schema", tenants,
                    env={"TENANCY_CONNECTION_MAX_SCHEMAS": str(ceiling)})
        )  # fmt: skip
    if django_tenants:
        out.append(
            Variant("django-tenants (stock)", "benchmarks.djt.settings",
                    bench_database(postgres_url, f"djt_{tenants}"), "djt", tenants)
        )  # fmt: skip
    return out


def memory_sweep(worker, checkpoints: list[int]) -> list[dict]:
    """Serve sites 1..max(checkpoints) once each on a fresh connection; memory at checkpoints."""
    worker.call("close_connections")
    worker.call("sample_backends", enable=True)
    rows, served = [], 0
    for checkpoint in checkpoints:
        worker.call("run", n=checkpoint - served, start=served)
        served = checkpoint
        rows.append({"tenants": checkpoint, **worker.call("memory")})
    worker.call("sample_backends", enable=False)
    return rows


def print_sweep(label: str, rows: list[dict]) -> None:
    print(f"\n  {label}")
    print(
        f"    {'tenants served':>14}{'backend RSS':>13}{'private':>9}{'peak RSS':>10}"
        f"{'peak priv.':>11}{'pg contexts':>12}{'connections':>12}{'worker RSS':>12}"
    )
    for row in rows:
        backend = row.get("backend", {})
        peak = row.get("backend_peak", {})
        print(
            f"    {row['tenants']:>14,}"
            f"{backend.get('VmRSS', 0) / MB:>11.1f}MB{backend.get('RssAnon', 0) / MB:>7.1f}MB"
            f"{peak.get('VmRSS', 0) / MB:>8.1f}MB{peak.get('RssAnon', 0) / MB:>9.1f}MB"
            f"{backend.get('contexts', 0) / MB:>10.1f}MB{row['backends_seen']:>12}"
            f"{row['python'].get('VmRSS', 0) / MB:>10.1f}MB"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000, help="tenant schemas")
    parser.add_argument(
        "--ceilings",
        default="0,100,500",
        help="TENANCY_CONNECTION_MAX_SCHEMAS values to compare (0 = no ceiling)",
    )
    parser.add_argument("--rounds", type=int, default=20, help="throughput rounds")
    parser.add_argument("--requests", type=int, default=100, help="requests per batch")
    parser.add_argument("--no-django-tenants", dest="django_tenants", action="store_false")
    parser.add_argument(
        "--postgres",
        default=postgres_server_url(),
    )
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args(argv)

    checkpoints = sorted({c for c in (1, 10, 100, 250, 500, args.tenants) if c <= args.tenants})
    ceilings = [int(c) for c in args.ceilings.split(",")]
    group = variants(args.postgres, args.tenants, ceilings, args.django_tenants)
    print(f"\n== Schema mode memory, {args.tenants:,} tenants", file=sys.stderr, flush=True)
    workers = inprocess.start_workers(group, rebuild=args.rebuild)
    try:
        print(
            f"\nSchema mode memory: one worker, one connection, serving {args.tenants:,} "
            "tenants' home pages once each (in-process, Django WSGI handler)"
        )
        for worker in workers:
            if worker.variant.baseline:
                continue
            print_sweep(worker.variant.label, memory_sweep(worker, checkpoints))
        results = inprocess.measure(workers, args.rounds, args.requests, warm=False)
        title = (
            f"\nSchema mode throughput, requests rotating over all {args.tenants:,} tenants: "
            f"{args.rounds} rounds x {args.requests} requests, interleaved"
        )
        print(report.table(title, results, baseline=group[0].label), flush=True)
    finally:
        inprocess.stop_workers(workers)


if __name__ == "__main__":
    main()
