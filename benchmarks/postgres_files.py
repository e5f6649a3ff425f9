"""Does PostgreSQL's open-file limit make 1,000 schemas cost more than 10?

A server process keeps at most ``max_files_per_process`` files open (and no more than its
``ulimit -n`` allows); past that it closes one to open another. A connection rotating over 1,000
tenant schemas touches a few files per schema (a table and its indexes), so with the default
1,000 it reopens them on almost every request (``strace``: openat + close per relation), while
with 10 schemas they all stay open. This runs the schema-mode home page (plain Django, 10 and
1,000 schemas; benchmarks.home_page's variants) against a private PostgreSQL server started here,
once with each limit, alternating, and prints the server process's CPU per request beside the
usual figures. Only the limit differs between the runs: same binaries, data and settings.

The server's data directory is kept in artifacts/bench/pg-files (built on the first run: a
minute or two). Needs the PostgreSQL server binaries (initdb, pg_ctl); run as root, the server
runs as the ``postgres`` user.

    .venv/bin/python -m benchmarks.postgres_files [--limits 1000,10000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import resource
import shutil
import statistics
import subprocess
import sys

from benchmarks import inprocess, report
from benchmarks.home_page import schema_variants
from benchmarks.inprocess import ARTIFACTS

DATA = ARTIFACTS / "pg-files"


def server_binary(name: str) -> str:
    """A PostgreSQL server program: on the PATH, else in Debian's /usr/lib/postgresql/*/bin."""
    found = shutil.which(name) or max(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), default=None)
    if found is None:
        sys.exit(f"{name} not found: install the PostgreSQL server (e.g. postgresql-15)")
    return found


def _as_server_user():
    """preexec_fn: the file-descriptor ceiling raised to its hard limit (so the server's own
    setting is what limits it), then the postgres user if we are root."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if os.getuid() == 0:
        user = pwd.getpwnam("postgres")
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)


def run_server_command(*command: str) -> None:
    subprocess.run(command, check=True, preexec_fn=_as_server_user, stdout=subprocess.DEVNULL)


def start_server(port: int, max_files: int) -> None:
    if not (DATA / "PG_VERSION").exists():
        DATA.mkdir(parents=True, exist_ok=True)
        if os.getuid() == 0:
            shutil.chown(DATA, "postgres")
        run_server_command(
            server_binary("initdb"), "-D", str(DATA), "-A", "trust", "-U", "postgres"
        )
    options = (
        f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={DATA} "
        f"-c max_files_per_process={max_files} -c autovacuum=off"
    )
    log = str(DATA / "server.log")
    run_server_command(
        server_binary("pg_ctl"), "-D", str(DATA), "-o", options, "-l", log, "-w", "start"
    )


def stop_server() -> None:
    if (DATA / "postmaster.pid").exists():
        run_server_command(server_binary("pg_ctl"), "-D", str(DATA), "-m", "fast", "-w", "stop")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limits", default="1000,10000", help="max_files_per_process values")
    parser.add_argument("--repeats", type=int, default=2, help="runs per limit, alternating")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--port", type=int, default=5499, help="port of the private server")
    args = parser.parse_args(argv)

    url = f"postgres://postgres@127.0.0.1:{args.port}/tenantsite"
    variants = schema_variants(url, [10, 1000], django_tenants=False)
    plain, ten, thousand = (v.label for v in variants)
    limits = [int(n) for n in args.limits.split(",")]
    extra_server_cpu = {limit: [] for limit in limits}
    stop_server()
    for repeat in range(args.repeats):
        for limit in limits:
            start_server(args.port, limit)
            try:
                workers = inprocess.start_workers(variants, processes=args.processes)
                try:
                    results = inprocess.measure(workers, args.rounds, args.requests)
                finally:
                    inprocess.stop_workers(workers)
            finally:
                stop_server()
            title = f"max_files_per_process = {limit} (run {repeat + 1} of {args.repeats})"
            print("\n" + report.table(title, results, plain), flush=True)
            extra = results[thousand].server_cpu_median_ms - results[ten].server_cpu_median_ms
            extra_server_cpu[limit].append(extra * 1000)

    print("\nServer CPU per request, 1,000 schemas minus 10 schemas (median of runs):")
    for limit, extras in extra_server_cpu.items():
        runs = ", ".join(f"{x:+.0f}" for x in extras)
        print(
            f"  max_files_per_process = {limit:>6}: {statistics.median(extras):+.0f} us  ({runs})"
        )


if __name__ == "__main__":
    main()
