"""What does the platform's home page cost behind PgBouncer in transaction mode? (issue 14)

Home page requests per second of gunicorn serving, all at once and measured in interleaved
rounds:

* **plain Django behind PgBouncer** (the baseline: ``benchmarks/plain``, one site whose page
  has the same size as a bench tenant's);
* **ours behind PgBouncer** (``TENANCY_TRANSACTION_POOLER`` on: every statement carries the
  tenant's ``SET LOCAL``), rotating over ``--tenants`` tenants;
* **ours on a direct connection** (the setting off: schema mode's session ``search_path``; row
  mode's row-level security sends its ``SET LOCAL`` either way);
* plain Django on a direct connection (what the pooler itself costs).

Everything else is the same for all: the private PostgreSQL cluster and PgBouncer
(``default_pool_size`` 4) of ``benchmarks.stack``, gunicorn's settings, the local-memory cache
(CACHE_URL; ``--redis`` gives ours the stack's Redis instead), the client
(``benchmarks.async_http``: ``--clients`` keep-alive connections in this process, every answer
checked for its site's marker). Each round runs every variant for ``--seconds`` in a shuffled
order; the table gives medians over rounds and ratios to plain Django behind PgBouncer, overall
(median / median) and paired (median over rounds of the round's ratio).

    nice .venv/bin/python benchmarks/pooler_throughput.py --mode schema --tenants 100
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import stack as stacks  # noqa: E402
from benchmarks.async_http import Client  # noqa: E402

PLAIN_DATABASE = "plain"
PLAIN_MARKER = b"Page 1 of plain-site."


@dataclass
class Variant:
    label: str
    env: dict[str, str]
    sites: list[tuple[str, bytes]]  # (host, marker its home page must show)
    baseline: bool = False
    server: object = None
    rps: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0
    cpu_ms: dict[str, list[float]] = field(default_factory=dict)  # per request, per batch


def prepare_plain(stack: stacks.Stack) -> None:
    """The plain-Django database beside ours on the cluster: migrated, one page as large as a
    bench tenant's (create_bench_tenants --pages=1)."""
    from tests.support.servers import manage

    stack.cluster.create_database(PLAIN_DATABASE)
    manage("migrate", "--verbosity=0", env=plain_env(stack, pooled=False), timeout=600)
    stack.cluster.execute(
        "INSERT INTO plain_page (title, body, ordering, published, updated_at) VALUES "
        "('Plain site: page 1', repeat('Page 1 of plain-site. ', 5), 1, true, now())",
        PLAIN_DATABASE,
    )


def plain_env(stack: stacks.Stack, *, pooled: bool) -> dict[str, str]:
    port = stack.bouncer.port if pooled else stack.cluster.port
    return {
        **stack.site_env(pooled=pooled),
        "DJANGO_SETTINGS_MODULE": "benchmarks.plain.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/{PLAIN_DATABASE}",
        "TENANCY_MODE": "row",
        "TENANCY_ROW_LEVEL_SECURITY": "false",
        "CACHE_URL": "locmemcache://",
    }


def variants(stack: stacks.Stack, tenants: int, redis: bool) -> list[Variant]:
    ours = [
        (f"{stacks.bench_slug(i)}.localhost", f"of {stacks.bench_slug(i)}.".encode())
        for i in range(1, tenants + 1)
    ]
    plain = [("localhost", PLAIN_MARKER)]
    cache = {} if redis else {"CACHE_URL": "locmemcache://"}
    return [
        Variant("plain Django, PgBouncer", plain_env(stack, pooled=True), plain, baseline=True),
        Variant(f"ours ({stack.mode}), PgBouncer", stack.site_env(pooled=True, **cache), ours),
        Variant(f"ours ({stack.mode}), direct", stack.site_env(pooled=False, **cache), ours),
        Variant("plain Django, direct", plain_env(stack, pooled=False), plain),
    ]


async def load(variant: Variant, clients: int, seconds: float, cursor) -> tuple[int, list]:
    """``clients`` closed-loop clients for ``seconds``; (answers, latencies in ms)."""
    port = variant.server.port
    stop_at = time.monotonic() + seconds
    latencies: list[float] = []

    async def client():
        connection = Client(port)
        while time.monotonic() < stop_at:
            host, marker = variant.sites[next(cursor) % len(variant.sites)]
            began = time.monotonic()
            answer = await connection.get(host)
            latencies.append((time.monotonic() - began) * 1000)
            if answer.status != 200 or marker not in answer.body:
                variant.failures += 1
        await connection.close()

    began = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    return len(latencies) / (time.monotonic() - began), latencies


def cpu_snapshot(stack: stacks.Stack, variant: Variant) -> dict[str, float]:
    """CPU seconds so far of the variant's gunicorn (master and workers), PgBouncer and the
    PostgreSQL cluster; measured around each batch (one variant runs at a time)."""
    return {
        "app": stacks.tree_cpu_seconds(variant.server.process.pid),
        "pgbouncer": stacks.tree_cpu_seconds(stack.bouncer.process.pid),
        "postgres": stacks.tree_cpu_seconds(stacks.postmaster_pid(stack)),
    }


async def measure(stack: stacks.Stack, all_variants, args) -> float:
    cursor = itertools.count()
    for variant in all_variants:  # every site once, then a short run
        print(f"  warming {variant.label}", file=sys.stderr, flush=True)
        warm = Client(variant.server.port)
        for host, _ in variant.sites:
            await warm.get(host)
        await warm.close()
        await load(variant, args.clients, 3, cursor)
    rng, order = random.Random(1), list(all_variants)
    cpu = time.process_time()
    busy = stacks.machine_cpu()[0]
    for round_number in range(args.rounds):
        rng.shuffle(order)
        for variant in order:
            before = cpu_snapshot(stack, variant)
            rps, latencies = await load(variant, args.clients, args.seconds, cursor)
            after = cpu_snapshot(stack, variant)
            variant.rps.append(rps)
            variant.latencies_ms += latencies
            for part in before:
                spent = (after[part] - before[part]) * 1000 / len(latencies)
                variant.cpu_ms.setdefault(part, []).append(spent)
        print(f"  round {round_number + 1}/{args.rounds}", file=sys.stderr, flush=True)
    return (time.process_time() - cpu) / max(stacks.machine_cpu()[0] - busy, 1e-9)


def report(all_variants, client_share: float, args) -> dict:
    base = next(v for v in all_variants if v.baseline)
    print(
        f"\nHome page behind PgBouncer (transaction mode, pool {args.pool_size}), {args.mode} "
        f"mode, {args.tenants} tenants; gunicorn {args.workers} x {args.threads} threads; "
        f"{args.clients} clients; {args.rounds} rounds x {args.seconds} s, interleaved"
    )
    print(f"  {'variant':<28}{'req/s':>8}{'x plain':>9}{'paired':>8}{'p50 ms':>8}{'p99 ms':>8}"
          f"{'failed':>8}   CPU ms per request: {'app':>6}{'bouncer':>8}{'pg':>6}{'total':>7}"
          f"{'x plain':>8}")  # fmt: skip
    base_cpu = _cpu_medians(base)
    figures = {}
    for v in all_variants:
        median = statistics.median(v.rps)
        paired = statistics.median(a / b for a, b in zip(v.rps, base.rps, strict=True))
        p50 = statistics.median(v.latencies_ms)
        p99 = statistics.quantiles(v.latencies_ms, n=100)[98]
        ratio = median / statistics.median(base.rps)
        cpu = _cpu_medians(v)
        cpu_ratio = cpu["total"] / base_cpu["total"]
        print(f"  {v.label:<28}{median:>8.0f}{ratio:>9.3f}{paired:>8.3f}{p50:>8.1f}{p99:>8.1f}"
              f"{v.failures:>8}{'':>22}{cpu['app']:>6.2f}{cpu['pgbouncer']:>8.2f}"
              f"{cpu['postgres']:>6.2f}{cpu['total']:>7.2f}{cpu_ratio:>8.3f}")  # fmt: skip
        figures[v.label] = {
            "req_per_s_median": round(median, 1),
            "req_per_s_rounds": [round(r, 1) for r in v.rps],
            "ratio_to_plain_pgbouncer": round(ratio, 3),
            "paired_ratio_to_plain_pgbouncer": round(paired, 3),
            "p50_ms": round(p50, 1),
            "p99_ms": round(p99, 1),
            "failed": v.failures,
            "cpu_ms_per_request_medians": {k: round(x, 3) for k, x in cpu.items()},
            "cpu_per_request_ratio_to_plain_pgbouncer": round(cpu_ratio, 3),
        }
    print(f"  client's share of the machine's busy CPU: {client_share:.1%}")
    return figures


def _cpu_medians(variant: Variant) -> dict[str, float]:
    """Median CPU ms per request of each part; total: the median of the batches' sums."""
    medians = {part: statistics.median(values) for part, values in variant.cpu_ms.items()}
    medians["total"] = statistics.median(map(sum, zip(*variant.cpu_ms.values(), strict=True)))
    return medians


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["row", "schema"], default="schema")
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--pool-size", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--redis", action="store_true", help="ours with CACHE_URL = the Redis")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    stacks.forget_deployment_environment()
    log_dir = Path(tempfile.mkdtemp(prefix="pooler-throughput-"))
    with stacks.running_stack(args.mode, pool_size=args.pool_size, redis=args.redis) as stack:
        stacks.prepare_database(stack, args.tenants)
        prepare_plain(stack)
        all_variants = variants(stack, args.tenants, args.redis)
        try:
            for v in all_variants:
                v.server = stacks.start_gunicorn(
                    v.env, log_dir, workers=args.workers, threads=args.threads
                )
            client_share = asyncio.run(measure(stack, all_variants, args))
        finally:
            for v in all_variants:
                if v.server is not None:
                    v.server.stop()
    figures = report(all_variants, client_share, args)
    if args.json:
        result = {"settings": vars(args), "figures": figures}
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
