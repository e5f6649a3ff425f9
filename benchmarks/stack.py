"""The production stack on loopback, for benchmarks: a private PostgreSQL cluster, PgBouncer in
transaction mode in front of it, a redis-server, and gunicorn serving the project through them.

The services are tests.support.services' (they stop and restart at will, on their own ports of
TEST_SERVER_PORTS); the database is made directly on the cluster (migrations do not go through
the pooler), then the site is served through PgBouncer. Bench tenants ``bench-00001`` ... come
from ``create_bench_tenants``: one page each whose body names the tenant (its marker) and one
owner, ``bench-00001-member1``, with a known password.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts import postgres_roles  # noqa: E402
from tests.support.servers import gunicorn, manage, start_server  # noqa: E402
from tests.support.services import PgBouncer, PostgresCluster, RedisServer  # noqa: E402

DATABASE = "tenantsite"
OWNER_PASSWORD = "load-Test-pass-42"  # every bench tenant's owner
SECRET_KEY = "production-stack-benchmark-not-secret"


def forget_deployment_environment() -> None:
    """Drop this shell's own deployment settings (TENANCY_*, DATABASE_*, CACHE_URL): the
    processes started here inherit the environment, and must get the stack's only."""
    for name in list(os.environ):
        if name.startswith(("TENANCY_", "DATABASE_")) or name in ("CACHE_URL", "SECRET_KEY"):
            del os.environ[name]


def bench_slug(i: int) -> str:
    return f"bench-{i:05d}"


def owner_username(i: int) -> str:
    return f"{bench_slug(i)}-member1"


@dataclass
class Stack:
    """The running services; ``site_env()`` is what gunicorn gets."""

    mode: str  # row | schema
    cluster: PostgresCluster
    bouncer: PgBouncer
    redis: RedisServer | None
    media: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def database_url(self, *, pooled: bool, app: bool = False) -> str:
        port = self.bouncer.port if pooled else self.cluster.port
        if self.mode == "schema":
            user = "postgres"
        else:
            user = postgres_roles.APP if app else postgres_roles.OWNER
        return f"postgres://{user}@127.0.0.1:{port}/{DATABASE}"

    def site_env(self, *, pooled: bool = True, **extra: str) -> dict[str, str]:
        env = {
            "TENANCY_MODE": self.mode,
            "DATABASE_URL": self.database_url(pooled=pooled),
            "TENANCY_TRANSACTION_POOLER": "true" if pooled else "false",
            "DEBUG": "False",
            "SECRET_KEY": SECRET_KEY,
            "CACHE_URL": self.redis.url if self.redis else "locmemcache://",
            "MEDIA_ROOT": str(self.media),
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "TENANCY_SCHEMA_POOL_REFILL": "background",
        }
        if self.mode == "row":
            env["TENANCY_ROW_LEVEL_SECURITY"] = "true"
            env["DATABASE_APP_URL"] = self.database_url(pooled=pooled, app=True)
        return {**env, **self.extra_env, **extra}


@contextlib.contextmanager
def running_stack(mode, *, pool_size=4, redis=True, pg_settings=None, bouncer_settings=None):
    """Start the cluster, PgBouncer (``pool_mode=transaction``) and redis-server; stop them
    all and remove their files at the end. ``*_settings``: postgresql.conf / pgbouncer.ini."""
    settings = {"shared_buffers": "128MB", **(pg_settings or {})}
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(PostgresCluster(settings=settings))
        pooler = PgBouncer(cluster.port, pool_size=pool_size, settings=bouncer_settings)
        bouncer = stack.enter_context(pooler)
        server = stack.enter_context(RedisServer()) if redis else None
        media = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stack-media-")))
        yield Stack(mode, cluster, bouncer, server, media)


def prepare_database(stack: Stack, tenants: int, *, jobs: int = 2) -> float:
    """Migrate, the demo tenants (the platform's site for sign-ups), ``tenants`` bench tenants
    with a page and an owner each, and in schema mode the spare-schema pool; on the cluster
    directly. Returns the seconds it took."""
    began = time.monotonic()
    if stack.mode == "row":
        postgres_roles.main(stack.cluster.url("postgres"))
    env = stack.site_env(pooled=False, CACHE_URL="locmemcache://")
    steps = [
        ["ensure_database"],
        ["migrate", "--verbosity=0"],
        ["seed_demo_tenants"],
        ["create_bench_tenants", str(tenants), "--pages=1", "--members=1"]
        + [f"--password={OWNER_PASSWORD}", f"--jobs={jobs}", "--verbosity=0"],
    ]
    if stack.mode == "schema":
        steps.append(["prepare_tenant_schemas"])
    for step in steps:
        print(f"  manage.py {' '.join(step)}", file=sys.stderr, flush=True)
        manage(*step, env=env, timeout=3600)
    return time.monotonic() - began


def start_gunicorn(env: dict[str, str], log_dir: Path, *, workers: int, threads: int):
    """gunicorn as in production (gthread workers, DEBUG off), its log in ``log_dir``."""
    command = gunicorn(
        f"--workers={workers}",
        f"--threads={threads}",
        "--worker-class=gthread",
        "--keep-alive=30",
        "--backlog=2048",
        "--timeout=120",
        "--graceful-timeout=5",
        "--no-control-socket",
    )
    return start_server(
        command,
        env=env,
        log_dir=log_dir,
        ready_path="/static/home/site.css",
        timeout=120,
    )


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / ticks, sum(fields[:8]) / ticks


def tree_cpu_seconds(root: int) -> float:
    """CPU time (user + system) of process ``root`` and all its descendants alive now, in
    seconds, from /proc: CPU per request is steadier than requests per second on a machine
    shared with other work."""
    parents, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = int(fields[11]) + int(fields[12])
    tree, changed = {root}, True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                changed = True
    return sum(cpu.get(pid, 0) for pid in tree) / os.sysconf("SC_CLK_TCK")


def postmaster_pid(stack: Stack) -> int:
    return int((stack.cluster.data / "postmaster.pid").read_text().split()[0])
