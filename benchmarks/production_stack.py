"""Does isolation hold on the production stack, under load and through Redis and PostgreSQL
outages? (issue 14)

The script starts its own PostgreSQL cluster, PgBouncer (``pool_mode=transaction``,
``default_pool_size`` 4) and redis-server on loopback ports of TEST_SERVER_PORTS
(``benchmarks.stack``), makes ``--tenants`` bench tenants, each with a page naming it (its
marker) and an owner with a known password, and serves the site with gunicorn (gthread workers,
DEBUG off, CACHE_URL = that Redis, TENANCY_TRANSACTION_POOLER on) through PgBouncer. Row mode
runs with row-level security (two roles, scripts/postgres_roles.py).

``--clients`` clients (asyncio, one keep-alive connection each, in this process) rotate over
the tenants with a mix of:

* page reads (most): ``GET /`` on a tenant's host, which must show that tenant's marker and no
  other tenant's;
* admin edits (``--admin-share``): the tenant's owner (signed in once before the run) adds a
  page through the admin; once acknowledged (302) the new page must show on its own host, and
  not on another tenant's host read right after;
* sign-ups (``--signup-share``): ``POST /api/register/`` on the platform's site, then the new
  site must answer with its own name.

Phases, ``--phase-seconds`` each: ``steady``; ``redis`` (redis-server stopped at
``--fault-at`` for ``--redis-down`` seconds, then started again); ``postgres`` (the cluster
stopped and started again at ``--fault-at``, as ``pg_ctl restart``). Per phase: requests,
req/s, p50/p99 latency, status counts, cross-tenant responses, misplaced writes, recovery time
after the fault. At the end every acknowledged write and sign-up is looked up in the database
(lost, or stored under another tenant).

``--control`` serves schema mode with TENANCY_TRANSACTION_POOLER off (session-level
``SET search_path``) behind the same PgBouncer: the control that must show leaks.

    nice .venv/bin/python benchmarks/production_stack.py --mode schema --tenants 100 --clients 50
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import stack as stacks  # noqa: E402
from benchmarks.async_http import Client  # noqa: E402

_BENCH = re.compile(rb"bench-(\d{5})")
# The last line of a traceback: an exception that no other one was raised from.
_EXCEPTION_LINE = re.compile(
    r"^([\w.]+(?:Error|Exception|Refused|Unavailable)): (.{0,120}).*$"
    r"(?!\n\n(?:During handling|The above exception))",
    re.M,
)
_PLATFORM_MARKER = b"One codebase, many sites"  # the platform's landing page
CHANGE_LIST = "/admin/home/pagecontent/"


@dataclass
class Record:
    t0: float  # seconds since the phase began
    t1: float
    kind: str
    status: int | str
    problem: str | None = None  # foreign, missing, misplaced, not_read_back, unexpected

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass
class Phase:
    name: str
    began: float
    records: list[Record] = field(default_factory=list)
    events: dict[str, float] = field(default_factory=dict)  # fault times, since began
    seconds: float = 0.0
    client_cpu: float = 0.0
    machine_busy: float = 0.0


def foreign_tenants(body: bytes, own: int | None) -> bool:
    """Whether ``body`` names a bench tenant other than ``own``."""
    return any(int(number) != own for number in _BENCH.findall(body))


class Load:
    """The clients, what they saw, and the writes they were told succeeded."""

    def __init__(self, port: int, args, tenants: list[int], editable: list[int]):
        self.port, self.args = port, args
        self.run_id = uuid.uuid4().hex[:5]
        rng = random.Random(1)
        self.reads = itertools.cycle(rng.sample(tenants, len(tenants)))
        self.tenants = tenants
        self.sessions: dict[int, dict[str, str]] = {}  # tenant -> the owner's cookies
        self.not_signed_in: list[int] = []
        self.acknowledged: dict[str, int] = {}  # page title -> tenant whose admin took it
        self.attempted: dict[str, int] = {}
        self.signups: dict[str, str] = {}  # username -> domain, acknowledged (201)
        self.sequence = itertools.count(1)
        self.new_site_seen_after: list[float] = []  # seconds from sign-up to its own page
        self.phase: Phase | None = None

    # --- before the run -------------------------------------------------------------------------

    async def sign_in_owners(self, editable: list[int], at_once: int = 4) -> None:
        gate = asyncio.Semaphore(at_once)

        async def sign_in(i: int) -> None:
            async with gate:
                client, host = Client(self.port), f"{stacks.bench_slug(i)}.localhost"
                page = await client.get(host, "/admin/login/")
                form = {"csrfmiddlewaretoken": page.csrf_token() or "", "next": "/admin/"}
                form.update(username=stacks.owner_username(i), password=stacks.OWNER_PASSWORD)
                answer = await client.post_form(host, "/admin/login/", form)
                await client.close()
                if answer.status == 302 and answer.header("location") == "/admin/":
                    self.sessions[i] = dict(client.cookies[host])
                else:  # only where isolation fails (the control): no edits on that tenant
                    self.not_signed_in.append(i)

        await asyncio.gather(*(sign_in(i) for i in editable))
        self.edits = itertools.cycle(sorted(self.sessions))

    # --- the clients ----------------------------------------------------------------------------

    def _record(self, t0, kind, answer, problem=None, expected=(200,)):
        if problem is None and answer.status not in expected:
            problem = "unexpected"
        began = self.phase.began
        self.phase.records.append(
            Record(t0 - began, time.monotonic() - began, kind, answer.status, problem)
        )

    async def client(self, n: int, stop_at: float) -> None:
        client, rng = Client(self.port), random.Random(n)
        signup, admin = self.args.signup_share, self.args.signup_share + self.args.admin_share
        while time.monotonic() < stop_at:
            draw = rng.random()
            if draw < signup:
                await self.sign_up(client)
            elif draw < admin and self.sessions:
                await self.edit(client, next(self.edits), rng)
            else:
                await self.read(client, next(self.reads))
        await client.close()

    async def read(self, client: Client, i: int, kind: str = "read") -> bytes:
        t0 = time.monotonic()
        answer = await client.get(f"{stacks.bench_slug(i)}.localhost")
        problem = None
        if foreign_tenants(answer.body, i):
            problem = "foreign"
        elif answer.status == 200 and f"of {stacks.bench_slug(i)}.".encode() not in answer.body:
            problem = "missing"
        self._record(t0, kind, answer, problem)
        return answer.body if answer.status == 200 and problem is None else b""

    async def edit(self, client: Client, i: int, rng: random.Random) -> None:
        host = f"{stacks.bench_slug(i)}.localhost"
        client.cookies[host] = dict(self.sessions[i])
        t0 = time.monotonic()
        form = await client.get(host, "/admin/home/pagecontent/add/")
        token = form.csrf_token()
        self._record(t0, "admin-form", form, "foreign" if foreign_tenants(form.body, i) else None)
        if form.status != 200 or token is None:
            return
        title = f"Note {self.run_id}-{next(self.sequence):06d}"
        self.attempted[title] = i
        t0 = time.monotonic()
        fields = {"csrfmiddlewaretoken": token, "title": title, "body": "Added by the load test."}
        fields.update(ordering="0", published="on", image_alt="", _save="Save")
        saved = await client.post_form(host, "/admin/home/pagecontent/add/", fields)
        # To the change list; a redirect to the log-in page (session not found) is no success.
        acknowledged = saved.status == 302 and saved.header("location") == CHANGE_LIST
        self._record(t0, "admin-save", saved, None if acknowledged else "unexpected", (302,))
        if not acknowledged:
            return
        self.acknowledged[title] = i
        body = await self.read(client, i, "read-back")
        if body and title.encode() not in body:
            self.phase.records[-1].problem = "not_read_back"
        other = rng.choice([t for t in self.tenants[:50] if t != i])
        t0 = time.monotonic()
        answer = await client.get(f"{stacks.bench_slug(other)}.localhost")
        seen = title.encode() in answer.body
        self._record(t0, "other-host", answer, "misplaced" if seen else None)

    async def sign_up(self, client: Client) -> None:
        username = f"load{self.run_id}{next(self.sequence):06d}"
        body = {"username": username, "email": f"{username}@example.com"}
        body.update(password="Sign-up-pass-123", site_name=f"Site of {username}")
        t0 = time.monotonic()
        answer = await client.post_json("localhost", "/api/register/", json.dumps(body).encode())
        self._record(t0, "signup", answer, None, (201,))
        if answer.status != 201:
            return
        made = json.loads(answer.body)
        self.signups[username] = made["domain"]
        # Other workers learn of a new domain within TENANCY_RESOLVER_REVALIDATE_SECONDS;
        # until then they serve the platform's site for it (an unknown host).
        t0 = deadline = time.monotonic()
        deadline += self.args.new_site_grace
        while True:
            site = await client.get(made["domain"])
            problem = "foreign" if foreign_tenants(site.body, None) else None
            if problem is None and site.status == 200 and made["name"].encode() not in site.body:
                problem = "missing"
            if problem != "missing" or _PLATFORM_MARKER not in site.body:
                break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        self.new_site_seen_after.append(time.monotonic() - t0)
        self._record(t0, "signup-site", site, problem)

    async def run_phase(self, name: str, seconds: float, fault=None) -> Phase:
        self.phase = phase = Phase(name, time.monotonic())
        cpu, (busy, _) = time.process_time(), stacks.machine_cpu()
        stop_at = phase.began + seconds
        faulting = asyncio.create_task(fault(phase, stop_at)) if fault else None
        await asyncio.gather(*(self.client(n, stop_at) for n in range(self.args.clients)))
        if faulting is not None:
            await faulting
        phase.seconds = time.monotonic() - phase.began
        phase.client_cpu = time.process_time() - cpu
        phase.machine_busy = stacks.machine_cpu()[0] - busy
        return phase


# --- faults ---------------------------------------------------------------------------------------


def redis_outage(stack: stacks.Stack, at: float, down: float):
    async def fault(phase: Phase, stop_at: float) -> None:
        await asyncio.sleep(at)
        phase.events["down"] = time.monotonic() - phase.began
        await asyncio.to_thread(stack.redis.stop)
        await asyncio.sleep(down)
        await asyncio.to_thread(stack.redis.start)
        phase.events["back"] = time.monotonic() - phase.began
        while time.monotonic() < stop_at:  # until a worker stores something there again
            if await asyncio.to_thread(lambda: bool(stack.redis.stored_keys())):
                phase.events["cache_used_again"] = time.monotonic() - phase.began
                return
            await asyncio.sleep(0.1)

    return fault


def postgres_restart(stack: stacks.Stack, at: float, down: float):
    async def fault(phase: Phase, stop_at: float) -> None:
        await asyncio.sleep(at)
        phase.events["down"] = time.monotonic() - phase.began
        await asyncio.to_thread(stack.cluster.stop)
        await asyncio.sleep(down)
        await asyncio.to_thread(stack.cluster.start)
        phase.events["back"] = time.monotonic() - phase.began

    return fault


# --- figures --------------------------------------------------------------------------------------


def _percentile(values: list[float], p: int) -> float | None:
    if len(values) < 2:
        return None
    return round(statistics.quantiles(values, n=100)[p - 1], 1)


def phase_figures(phase: Phase) -> dict:
    records = phase.records
    latencies = [(r.t1 - r.t0) * 1000 for r in records]
    reads = [(r.t1 - r.t0) * 1000 for r in records if r.kind == "read"]
    problems = Counter(r.problem for r in records if r.problem)
    failed = [r for r in records if not r.ok]
    back = phase.events.get("back")
    recovery = None
    if back is not None:
        after = [r.t1 for r in failed if r.t1 > back]
        recovery = round(max(after) - back, 2) if after else 0.0
    return {
        "requests": len(records),
        "req_per_s": round(len(records) / phase.seconds, 1),
        "p50_ms": _percentile(latencies, 50),
        "p99_ms": _percentile(latencies, 99),
        "read_p50_ms": _percentile(reads, 50),
        "read_p99_ms": _percentile(reads, 99),
        "statuses": dict(sorted(Counter(str(r.status) for r in records).items())),
        "kinds": dict(sorted(Counter(r.kind for r in records).items())),
        "cross_tenant": problems["foreign"],
        "wrong_site": problems["missing"],
        "misplaced_writes": problems["misplaced"],
        "not_read_back": problems["not_read_back"],
        "failed": len(failed),
        "failures_from_s": round(min(r.t0 for r in failed), 2) if failed else None,
        "failures_until_s": round(max(r.t1 for r in failed), 2) if failed else None,
        "events_s": {k: round(v, 2) for k, v in phase.events.items()},
        "recovery_s": recovery,
        "client_cpu_s": round(phase.client_cpu, 1),
        "client_cpu_share_of_busy": round(phase.client_cpu / max(phase.machine_busy, 1e-9), 3),
        "machine_busy_cores": round(phase.machine_busy / phase.seconds, 2),
    }


def stored_writes(stack: stacks.Stack) -> dict[str, set[str]]:
    """Every load-test page in the database: title -> slugs of the tenants holding it."""
    found: dict[str, set[str]] = {}
    url = stack.cluster.url(stacks.DATABASE)
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        if stack.mode == "row":
            rows = conn.execute(
                "SELECT p.title, t.slug FROM home_pagecontent p "
                "JOIN tenants_tenant t ON t.id = p.tenant_id WHERE p.title LIKE 'Note %'"
            ).fetchall()
        else:
            tenants = dict(conn.execute("SELECT schema_name, slug FROM tenants_tenant"))
            schemas = [  # spare and template schemas too: a misplaced write may land there
                row[0]
                for row in conn.execute(
                    "SELECT table_schema FROM information_schema.tables "
                    "WHERE table_name = 'home_pagecontent'"
                )
            ]
            parts = [
                f"SELECT title, '{tenants.get(schema, '[' + schema + ']')}' "
                f"FROM \"{schema}\".home_pagecontent WHERE title LIKE 'Note %'"
                for schema in schemas
            ]
            rows = conn.execute(" UNION ALL ".join(parts)).fetchall() if parts else []
    for title, slug in rows:
        found.setdefault(title, set()).add(slug)
    return found


def verify_writes(stack: stacks.Stack, load: Load) -> dict:
    stored = stored_writes(stack)
    lost = [
        t for t, i in load.acknowledged.items() if stacks.bench_slug(i) not in stored.get(t, ())
    ]
    elsewhere = [
        t for t, i in load.attempted.items() if stored.get(t, set()) - {stacks.bench_slug(i)}
    ]
    import psycopg

    with psycopg.connect(stack.cluster.url(stacks.DATABASE), autocommit=True) as conn:
        domains = {
            row[0]
            for row in conn.execute(
                "SELECT domain FROM tenants_domain WHERE domain = ANY(%s)",
                [list(load.signups.values())],
            )
        }
    unacknowledged = [t for t in load.attempted if t not in load.acknowledged]
    return {
        "acknowledged_writes": len(load.acknowledged),
        "lost_acknowledged_writes": len(lost),
        "writes_stored_in_another_tenant": len(elsewhere),
        "unacknowledged_writes": len(unacknowledged),
        "unacknowledged_but_stored": sum(1 for t in unacknowledged if t in stored),
        "acknowledged_signups": len(load.signups),
        "lost_signups": len(set(load.signups.values()) - domains),
        "new_site_served_after_s_median_max": [
            round(statistics.median(load.new_site_seen_after), 2),
            round(max(load.new_site_seen_after), 2),
        ]
        if load.new_site_seen_after
        else None,
        "examples": {"lost": lost[:3], "elsewhere": elsewhere[:3]},
    }


def server_errors(log: str) -> dict[str, int]:
    """The exceptions in gunicorn's log (tracebacks' last lines), most frequent first."""
    found = Counter(f"{name}: {message}" for name, message in _EXCEPTION_LINE.findall(log))
    return dict(found.most_common(6))


def print_table(mode: str, figures: dict[str, dict]) -> None:
    columns = [
        ("requests", "requests"), ("req_per_s", "req/s"), ("p50_ms", "p50 ms"),
        ("p99_ms", "p99 ms"), ("cross_tenant", "cross"), ("wrong_site", "wrong"),
        ("misplaced_writes", "misplaced"), ("failed", "failed"), ("recovery_s", "recovery s"),
        ("client_cpu_share_of_busy", "client cpu"),
    ]  # fmt: skip
    print(f"\n{mode} mode: " + "".join(f"{title:>11}" for _, title in columns))
    for name, row in figures.items():
        cells = "".join(f"{str(row[key]):>11}" for key, _ in columns)
        print(f"{name:<12}{cells}")
        print(f"{'':<12}statuses {row['statuses']}  events {row['events_s']}")


# --- the run --------------------------------------------------------------------------------------


async def drive(stack: stacks.Stack, port: int, args) -> dict:
    tenants = list(range(1, args.tenants + 1))
    editable = tenants[: args.edit_tenants]
    load = Load(port, args, tenants, editable)
    began = time.monotonic()
    await load.sign_in_owners(editable)
    took = time.monotonic() - began
    print(f"  {len(load.sessions)}/{len(editable)} owners signed in, {took:.1f} s", file=sys.stderr)
    load.phase = Phase("warm-up", time.monotonic())  # every host once, not counted
    warm = Client(port)
    for i in tenants:
        await load.read(warm, i)
    await warm.close()
    faults = {
        "steady": None,
        "redis": redis_outage(stack, args.fault_at, args.redis_down),
        "postgres": postgres_restart(stack, args.fault_at, args.pg_down),
    }
    figures = {}
    for name in args.phases.split(","):
        print(f"  phase {name}: {args.phase_seconds} s", file=sys.stderr, flush=True)
        phase = await load.run_phase(name, args.phase_seconds, faults[name])
        figures[name] = phase_figures(phase)
    writes = {"owners_not_signed_in": len(load.not_signed_in), **verify_writes(stack, load)}
    return {"phases": figures, "writes": writes}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["row", "schema"], required=True)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--pool-size", type=int, default=4, help="PgBouncer default_pool_size")
    parser.add_argument("--phases", default="steady,redis,postgres")
    parser.add_argument("--phase-seconds", type=float, default=40)
    parser.add_argument("--fault-at", type=float, default=10, help="seconds into the phase")
    parser.add_argument("--redis-down", type=float, default=10, help="seconds")
    parser.add_argument("--pg-down", type=float, default=0, help="seconds between stop and start")
    parser.add_argument("--edit-tenants", type=int, default=50, help="tenants whose owner edits")
    parser.add_argument("--admin-share", type=float, default=0.03)
    parser.add_argument("--signup-share", type=float, default=0.001)
    parser.add_argument(
        "--new-site-grace",
        type=float,
        default=3.0,
        help="seconds a new site may take to be served by every worker",
    )
    parser.add_argument(
        "--server-login-retry",
        type=int,
        help="PgBouncer's server_login_retry (seconds; its default is 15)",
    )
    parser.add_argument("--control", action="store_true",
                        help="schema mode, TENANCY_TRANSACTION_POOLER off: must leak")  # fmt: skip
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.control and args.mode != "schema":
        parser.error("--control is schema mode's (row-level security has no session mode)")
    args.edit_tenants = min(args.edit_tenants, args.tenants)

    stacks.forget_deployment_environment()
    log_dir = Path(tempfile.mkdtemp(prefix="production-stack-"))
    bouncer = {}
    if args.server_login_retry is not None:
        bouncer["server_login_retry"] = str(args.server_login_retry)
    services = stacks.running_stack(args.mode, pool_size=args.pool_size, bouncer_settings=bouncer)
    with services as stack:
        took = stacks.prepare_database(stack, args.tenants)
        print(f"  database ready in {took:.0f} s", file=sys.stderr)
        env = stack.site_env(TENANCY_TRANSACTION_POOLER="false" if args.control else "true")
        server = stacks.start_gunicorn(env, log_dir, workers=args.workers, threads=args.threads)
        try:
            result = asyncio.run(drive(stack, server.port, args))
        finally:
            server.stop()
        result["server_errors"] = server_errors(server.log_text())
    result["settings"] = {k: v for k, v in vars(args).items() if k != "json"}
    label = f"{args.mode}{' (control: session SET)' if args.control else ''}"
    print_table(label, result["phases"])
    print(f"writes: {result['writes']}")
    print(f"server errors (gunicorn log): {result['server_errors']}")
    print(f"gunicorn log: {server.log}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
