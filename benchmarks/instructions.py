"""How many CPU instructions does tenancy add to a home page request? Counted, not timed.

Timings on a shared 2-core machine move by several percent from one process to the next (see
benchmarks.inprocess), which is as large as the effect being measured. Instruction counts do
not: valgrind's callgrind counts every instruction a process executes, the same for the same
code and inputs whatever else the machine is doing. Each variant is run twice under callgrind,
serving ``--few`` and then ``--many`` home page requests after the same warm-up; the difference
divided by the extra requests is the cost of one warm request, start-up excluded. The garbage
collector is off while counting and the hash seed fixed, so the two runs differ only in the
requests served (a collection landing in one run and not the other would add millions).

What it leaves out: memory effects (a bigger heap, caches missed), which the timed benchmarks
(home_page.py) include. Needs valgrind; slow (a minute or two per variant, two at a time).
Only small tenant counts can be counted this way: under valgrind, warming 10,000 sites takes
longer than the branding cache keeps an entry (5 minutes), so every counted request would
miss it (6.17 M instructions per request for row mode with 10,000 tenants, against 5.11 M
with 10: an extra query, not tenancy's cost).

    .venv/bin/python -m benchmarks.instructions [--variants plain,row,...] [--few 50 --many 300]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

from benchmarks import inprocess
from benchmarks.datasets import postgres_server_url
from benchmarks.home_page import row_postgres_variants, row_variants, schema_variants
from benchmarks.inprocess import ROOT, Variant

_COLLECTED = re.compile(r"Collected : (\d+)")


def variants(postgres_url: str) -> dict[str, Variant]:
    plain_sqlite, row_10 = row_variants([10])
    plain_pg, schema_10, schema_1000, django_tenants_10, _ = schema_variants(
        postgres_url, [10, 1000]
    )
    _, row_pg, row_pg_rls = row_postgres_variants(postgres_url, [10])
    return {
        "row-pg": row_pg,  # row mode on PostgreSQL, row-level security off
        "row-pg-rls": row_pg_rls,  # and on (the default there)
        "plain": plain_sqlite,
        "row": row_10,
        "plain-pg": plain_pg,
        "schema": schema_10,
        "schema-1000": schema_1000,  # does the Python side do more work with more schemas?
        "django-tenants": django_tenants_10,
    }


def serve(kind: str, tenants: int, requests: int) -> None:
    """Inside the counted process: warm every site, then serve ``requests`` more."""
    import gc

    import django

    django.setup()
    from benchmarks.worker import Worker

    worker = Worker()
    worker.prepare(kind, tenants)
    worker.warm()
    worker.run(300)
    gc.collect()
    gc.disable()
    worker.run(requests)


def count(variant: Variant, requests: int) -> int:
    """Instructions executed by a whole process that serves ``requests`` warm requests."""
    env = variant.environment()
    env["PYTHONHASHSEED"] = "0"
    code = (
        "from benchmarks.instructions import serve; "
        f"serve({variant.kind!r}, {variant.tenants}, {requests})"
    )
    with tempfile.NamedTemporaryFile(suffix=".callgrind") as out:
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}"]
        result = subprocess.run(
            [*command, sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
    match = _COLLECTED.search(result.stderr)
    if result.returncode != 0 or match is None:
        raise RuntimeError(f"{variant.label}: valgrind failed\n{result.stderr[-2000:]}")
    return int(match.group(1))


def per_request(variant: Variant, few: int, many: int) -> float:
    inprocess.stop_workers(inprocess.start_workers([variant]))  # its database, built uncounted
    with ThreadPoolExecutor(max_workers=2) as pool:  # the two runs of a variant side by side
        small, large = pool.map(lambda n: count(variant, n), (few, many))
    return (large - small) / (many - few)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--variants",
        default="plain,row,plain-pg,schema",
        help="plain, row, plain-pg, row-pg, row-pg-rls (row mode on PostgreSQL, row-level "
        "security off/on), schema, django-tenants (10 tenants or schemas each), schema-1000 "
        "(1,000 schemas)",
    )
    parser.add_argument("--few", type=int, default=50)
    parser.add_argument("--many", type=int, default=300)
    parser.add_argument("--postgres", default=postgres_server_url())
    args = parser.parse_args(argv)

    available = variants(args.postgres)
    chosen = args.variants.split(",")
    unknown = set(chosen) - set(available)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    counts = {}
    for name in chosen:
        print(f"  counting {available[name].label} ...", file=sys.stderr, flush=True)
        counts[name] = per_request(available[name], args.few, args.many)

    print(
        f"\nHome page: instructions per warm request (callgrind, {args.many} - {args.few} "
        "requests, GC off, hash seed 0)"
    )
    print(f"  {'variant':<32}{'instructions':>14}{'vs baseline':>13}")
    for name in chosen:
        baseline = "plain" if available[name].database_url.startswith("sqlite") else "plain-pg"
        ratio = f"{counts[name] / counts[baseline] - 1:+.1%}" if baseline in counts else ""
        print(f"  {available[name].label:<32}{counts[name]:>14,.0f}{ratio:>13}")


if __name__ == "__main__":
    main()
