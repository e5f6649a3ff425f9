"""Real services that a test starts, stops and restarts: a private PostgreSQL cluster, a
PgBouncer in front of a server, a redis-server. Each listens on a free loopback port of
TEST_SERVER_PORTS and keeps its files in a directory of its own::

    with PostgresCluster() as cluster:                 # initdb + pg_ctl start, on a free port
        url = cluster.url("tenantsite")                # postgres://postgres@127.0.0.1:PORT/...
        cluster.stop(); cluster.start()                # an outage, on the same port and data
        with PgBouncer(cluster.port, pool_size=2) as bouncer:   # pool_mode=transaction
            bouncer.url("tenantsite")

They come from Debian's packages (postgresql, pgbouncer, redis-server), which scripts/test
installs when missing; a missing program fails the test with that advice, never skips it.
Run as root (CI), the servers run as the ``postgres`` user, as they refuse root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from tests.support.servers import free_port


def _program(name: str, package: str) -> str:
    found = shutil.which(name) or max(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}") + glob.glob(f"/usr/sbin/{name}"),
        default=None,
    )
    if found is None:
        pytest.fail(f"{name} not found: run scripts/test (it installs {package}) or apt-get it.")
    return found


def _server_user():
    """preexec_fn: become the ``postgres`` user when root (PostgreSQL and PgBouncer refuse to
    run as root)."""
    if os.getuid() == 0:
        user = pwd.getpwnam("postgres")
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)


def _private_directory(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.getuid() == 0:
        shutil.chown(path, "postgres", "postgres")
    return path


def wait_until(check, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {timeout} s")
        time.sleep(0.05)


class _Service:
    """Started on ``__enter__``, stopped and its directory removed on ``__exit__``."""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class PostgresCluster(_Service):
    """A private PostgreSQL cluster (``initdb``, trust authentication, superuser ``postgres``)
    on a free loopback port; ``stop()`` and ``start()`` keep its port and data."""

    def __init__(self, port: int | None = None, settings: dict[str, str] | None = None):
        self.port = port or free_port()
        self.directory = _private_directory("tenantsite-pg-")
        self.data = self.directory / "data"
        self.settings = {"max_connections": "200", "fsync": "off", **(settings or {})}
        self._run(_program("initdb", "postgresql"), "-D", str(self.data), "-A", "trust")

    def _run(self, *command: str) -> None:
        subprocess.run(command, check=True, preexec_fn=_server_user, capture_output=True)

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgres://{user}@127.0.0.1:{self.port}/{database}"

    def is_up(self) -> bool:
        try:
            psycopg.connect(self.url(), connect_timeout=2).close()
            return True
        except psycopg.OperationalError:
            return False

    def start(self) -> None:
        options = " ".join(
            [f"-c port={self.port}", "-c listen_addresses=127.0.0.1"]
            + [f"-c unix_socket_directories={self.directory}"]
            + [f"-c {name}={value}" for name, value in self.settings.items()]
        )
        log = str(self.directory / "server.log")
        pg_ctl = _program("pg_ctl", "postgresql")
        self._run(pg_ctl, "-D", str(self.data), "-o", options, "-l", log, "-w", "start")
        wait_until(self.is_up, f"PostgreSQL on port {self.port}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate`` is a crash: no shutdown checkpoint)."""
        if (self.data / "postmaster.pid").exists():
            self._run(_program("pg_ctl", "postgresql"), "-D", str(self.data), "-m", mode, "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def execute(self, query: str, database: str = "postgres"):
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            cursor = conn.execute(query)
            return cursor.fetchall() if cursor.description else []

    def create_database(self, name: str) -> str:
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


class PgBouncer(_Service):
    """PgBouncer in front of a PostgreSQL server, in ``pool_mode`` (transaction by default)
    with ``pool_size`` server connections per database and user: the deployment where
    consecutive transactions of one client land on different server connections. ``settings``
    adds lines to its ``[pgbouncer]`` section (``{"server_login_retry": "1"}``)."""

    def __init__(
        self,
        server_port: int,
        *,
        pool_size: int = 2,
        pool_mode: str = "transaction",
        server_host: str = "127.0.0.1",
        max_client_conn: int = 1000,
        settings: dict[str, str] | None = None,
    ):
        self.port = free_port()
        self.directory = _private_directory("tenantsite-pgbouncer-")
        self.process = None
        config = self.directory / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = host={server_host} port={server_port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\n"
            f"unix_socket_dir = {self.directory}\n"
            "auth_type = trust\nadmin_users = postgres\n"
            f"auth_file = {self.directory / 'users.txt'}\n"
            f"pool_mode = {pool_mode}\n"
            f"default_pool_size = {pool_size}\nmin_pool_size = 0\nreserve_pool_size = 0\n"
            f"max_client_conn = {max_client_conn}\n"
            "server_reset_query =\n"  # as in transaction mode: no DISCARD ALL between clients
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.directory / 'pgbouncer.log'}\n"
            + "".join(f"{name} = {value}\n" for name, value in (settings or {}).items())
        )
        (self.directory / "users.txt").write_text(
            '"postgres" ""\n"tenantsite_owner" ""\n"tenantsite_app" ""\n'
        )
        if os.getuid() == 0:
            for path in self.directory.iterdir():
                shutil.chown(path, "postgres", "postgres")
        self.config = config

    def url(self, database: str, user: str = "postgres") -> str:
        return f"postgres://{user}@127.0.0.1:{self.port}/{database}"

    def _answers(self) -> bool:
        try:
            psycopg.connect(self.url("pgbouncer"), connect_timeout=2, autocommit=True).close()
            return True
        except psycopg.OperationalError:
            return False

    def start(self) -> None:
        program = _program("pgbouncer", "pgbouncer")
        self.process = subprocess.Popen(
            [program, str(self.config)],
            preexec_fn=_server_user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, f"PgBouncer on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def server_connections(self) -> int:
        """Server connections PgBouncer holds now (SHOW SERVERS on its admin console)."""
        with psycopg.connect(self.url("pgbouncer"), autocommit=True) as admin:
            return len(admin.execute("SHOW SERVERS").fetchall())


class RedisServer(_Service):
    """A private redis-server on a free loopback port: no persistence, stopped and started at
    will on the same port."""

    def __init__(self):
        self.port = free_port()
        self.directory = _private_directory("tenantsite-redis-")
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _answers(self) -> bool:
        import redis

        try:
            return redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
        except redis.ConnectionError:
            return False

    def start(self) -> None:
        program = _program("redis-server", "redis-server")
        self.process = subprocess.Popen(
            [program, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
        )
        wait_until(self._answers, f"redis-server on port {self.port}", timeout=5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def stored_keys(self) -> list[str]:
        import redis

        return sorted(k.decode() for k in redis.Redis(port=self.port).keys("*"))
