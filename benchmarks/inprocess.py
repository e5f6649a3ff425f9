"""Variants, their worker processes, and interleaved measurement.

Every variant of a comparison is started at once (each idle until asked) and measured in rounds:
each round runs one batch per variant, in a shuffled order, one at a time. Load from other
processes on the machine then falls on all variants alike instead of on whichever ran last.

A variant may run in several processes, each with its own hash seed (PYTHONHASHSEED 1, 2, ...,
the same seeds for every variant). One process's speed depends on luck that stays with it for
its whole life (how its dicts and objects landed in memory): on this machine two processes of
the same code differed by up to 8%, more than the effect measured. A variant's figures pool the
requests of all its processes.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "bench"


@dataclass
class Variant:
    """One side of a comparison: settings, database, and which dataset it holds."""

    label: str
    settings: str  # DJANGO_SETTINGS_MODULE
    database_url: str
    kind: str  # datasets kind: plain, row, schema, djt
    tenants: int
    env: dict[str, str] = field(default_factory=dict)
    baseline: bool = False
    # Host affinity: each of the variant's processes serves its own share of the sites (a proxy
    # hashing the Host to a worker) instead of all of them.
    split_sites: bool = False

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE=self.settings,
            DATABASE_URL=self.database_url,
            TENANCY_MODE="schema" if self.kind == "schema" else "row",
            CACHE_URL="locmemcache://",
            DEBUG="false",
            LOG_LEVEL="WARNING",
            TENANCY_SCHEMA_POOL_SIZE="0",  # no spare-schema refills in the background
            PYTHONPATH=str(ROOT),
        )
        if self.settings != "config.settings":  # plain Django, django-tenants: no such thing
            env["TENANCY_ROW_LEVEL_SECURITY"] = "false"
        env.update(self.env)
        return env


class WorkerProcess:
    """A benchmarks.worker process for one variant."""

    def __init__(self, variant: Variant, hash_seed: int | None = None):
        self.variant = variant
        env = variant.environment()
        if hash_seed is not None:
            env["PYTHONHASHSEED"] = str(hash_seed)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def call(self, cmd: str, **args):
        self.process.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.variant.label}: worker exited ({self.process.wait()})")
        result = json.loads(line)
        if "error" in result:
            raise RuntimeError(f"{self.variant.label}: {result['error']}")
        return result

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.write('{"cmd": "quit"}\n')
            self.process.stdin.close()
            self.process.wait(timeout=30)


@dataclass
class Measured:
    """All requests of one variant in one measurement."""

    latencies_ns: list[int] = field(default_factory=list)
    cpu_ns: list[int] = field(default_factory=list)  # in-process only: this process's CPU time
    wall_ns: int = 0
    rounds_rps: list[float] = field(default_factory=list)
    rounds_median_ns: list[float] = field(default_factory=list)
    cold_ns: list[int] = field(default_factory=list)
    rss_bytes: int | None = None  # the worker process's RSS after the run
    # in-process, PostgreSQL on this machine: its server process's CPU per request, per batch
    server_cpu_ns: list[int] = field(default_factory=list)

    def add(self, latencies, wall_ns, cpu=(), server_cpu=()):
        self.latencies_ns.extend(latencies)
        self.cpu_ns.extend(cpu)
        self.server_cpu_ns.extend(server_cpu)
        self.wall_ns += wall_ns
        self.rounds_rps.append(len(latencies) / (wall_ns / 1e9))
        self.rounds_median_ns.append(statistics.median(latencies))

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies_ns) / 1e6

    @property
    def rps(self) -> float:
        return len(self.latencies_ns) / (self.wall_ns / 1e9)

    @property
    def cpu_median_ms(self) -> float | None:
        return statistics.median(self.cpu_ns) / 1e6 if self.cpu_ns else None

    @property
    def server_cpu_median_ms(self) -> float | None:
        return statistics.median(self.server_cpu_ns) / 1e6 if self.server_cpu_ns else None

    @property
    def cold_median_ms(self) -> float | None:
        return statistics.median(self.cold_ns) / 1e6 if self.cold_ns else None


def start_workers(
    variants: list[Variant], rebuild: bool = False, processes: int = 1
) -> list[WorkerProcess]:
    """Start ``processes`` workers per variant and make its database (one variant at a time:
    builds are heavy)."""
    workers = []
    try:
        for variant in variants:
            print(f"  preparing {variant.label} ...", file=sys.stderr, flush=True)
            for i in range(processes):
                worker = WorkerProcess(variant, hash_seed=i + 1 if processes > 1 else None)
                workers.append(worker)
                info = worker.call(
                    "prepare",
                    kind=variant.kind,
                    tenants=variant.tenants,
                    rebuild=rebuild and i == 0,
                    share=(i, processes) if variant.split_sites else None,
                )
                if info["built"]:
                    print(f"    built in {info['seconds']:.0f} s", file=sys.stderr, flush=True)
    except BaseException:
        stop_workers(workers)
        raise
    return workers


def stop_workers(workers: list[WorkerProcess]) -> None:
    for worker in workers:
        try:
            worker.close()
        except Exception:
            worker.process.kill()


def measure(
    workers: list[WorkerProcess], rounds: int, requests: int, seed: int = 1, warm: bool = True
) -> dict[str, Measured]:
    """Warm every site of every variant, then ``rounds`` interleaved batches of ``requests``
    per worker process. A round of a variant is its batches of that round, all processes."""
    results = {w.variant.label: Measured() for w in workers}
    for worker in workers if warm else ():
        print(f"  warming {worker.variant.label} ...", file=sys.stderr, flush=True)
        results[worker.variant.label].cold_ns.extend(worker.call("warm")["latencies_ns"])
        worker.call("run", n=min(requests, 300))  # then a few more, unrecorded
    order = list(workers)
    rng = random.Random(seed)
    for _ in range(rounds):
        rng.shuffle(order)
        batches = {label: ([], 0, [], []) for label in results}
        for worker in order:
            batch = worker.call("run", n=requests)
            latencies, wall, cpu, server_cpu = batches[worker.variant.label]
            latencies.extend(batch["latencies_ns"])
            cpu.extend(batch["cpu_ns"])
            if batch["server_cpu_ns"] is not None:
                server_cpu.append(batch["server_cpu_ns"])
            batches[worker.variant.label] = (latencies, wall + batch["wall_ns"], cpu, server_cpu)
        for label, (latencies, wall, cpu, server_cpu) in batches.items():
            results[label].add(latencies, wall, cpu, server_cpu)
    return results
