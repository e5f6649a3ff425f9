"""A real server process on the test database, for tests that go through HTTP for real.

gunicorn (the production server) serves ``config.wsgi`` on a free port of ``TEST_SERVER_PORTS``
(default 8400-8499), on the test database that pytest-django made: the SQLite file in row mode,
the PostgreSQL test database in schema mode. Only committed rows are visible to it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings

from tests.support.servers import free_ports, served_database_url

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30


class ServerProcess:
    def __init__(self, port: int, process: subprocess.Popen, log: Path):
        self.port, self.process, self.log = port, process, log

    def url(self, host: str, path: str = "/") -> str:
        return f"http://{host}:{self.port}{path}"

    def get(self, host: str, path: str = "/", headers: dict | None = None):
        """(status, headers, body) of a GET sent to 127.0.0.1 with ``host`` as Host."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            headers={"Host": f"{host}:{self.port}", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(log_dir: Path, **extra_env: str) -> ServerProcess:
    """Start gunicorn on the test database and wait until it answers."""
    env = {
        **os.environ,
        "TENANCY_MODE": settings.TENANCY_MODE,
        "DATABASE_URL": served_database_url(),
        "DEBUG": "False",
        "CACHE_URL": "locmemcache://",
        "PYTHONUNBUFFERED": "1",
        # The test database is shared by the whole run: no spare schemas committed behind the
        # other tests' backs (background refill is tested in test_signup_live, on its own).
        "TENANCY_SCHEMA_POOL_REFILL": "command",
        **extra_env,
    }
    env.pop("TEST_DATABASE_NAME", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = None
    for attempt, port in enumerate(free_ports()):
        log = log_dir / f"server-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    str(gunicorn),
                    "config.wsgi:application",
                    f"--bind=127.0.0.1:{port}",
                    "--workers=1",
                    "--threads=4",
                    "--graceful-timeout=2",
                    "--no-control-socket",  # one per process, not one per user's home
                ],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = ServerProcess(port, process, log)
        if _wait_until_up(server):
            return server
        server.stop()
        if attempt >= 2:
            break
    detail = f"its log:\n{log.read_text()[-3000:]}" if log else "no free port in TEST_SERVER_PORTS"
    raise RuntimeError(f"The test server did not start; {detail}")


def _wait_until_up(server: ServerProcess) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False  # exited: port taken, or a start-up error (see its log)
        try:
            server.get("localhost", "/static/home/site.css")
            return True
        except OSError:
            time.sleep(0.2)
    return False
