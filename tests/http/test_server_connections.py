"""Schema mode: each supported server, in its default configuration, holds a bounded number of
PostgreSQL connections however many requests it serves (counted in pg_stat_activity).

* runserver (a thread per request) and uvicorn (a thread per ASGI request): a pool of
  DATABASE_POOL_MAX_SIZE connections per process;
* gunicorn with a fixed number of threads: one persistent connection per thread.

Load: 12 clients at once over every demo host, far more requests than connections allowed.
"""

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from tests.support.demo import DEMO_HOSTS
from tests.support.servers import RUNSERVER, gunicorn, on_test_database, serving

pytestmark = [pytest.mark.schema_only, pytest.mark.django_db]

UVICORN = str(Path(sys.executable).with_name("uvicorn"))
CLIENTS = 12
REQUESTS = 360
POOL_MAX = 4  # DATABASE_POOL_MAX_SIZE's default
SERVERS = {
    # name: (command, most connections allowed)
    "runserver": (RUNSERVER, POOL_MAX),
    "uvicorn": (
        [UVICORN, "config.asgi:application", "--host=127.0.0.1", "--port={port}", "--workers=2"],
        2 * POOL_MAX,
    ),
    "gunicorn": (gunicorn("--workers=2", "--threads=4", "--no-control-socket"), 2 * 4),
}


class ConnectionCounter:
    """Samples how many connections carry ``application_name``, from a thread of its own."""

    def __init__(self, name):
        self.name = name
        self.peak = 0
        self._stop = threading.Event()
        self._db = psycopg.connect(on_test_database()["DATABASE_URL"], autocommit=True)
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def now(self) -> int:
        query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        return self._db.execute(query, [self.name]).fetchone()[0]

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._db.close()


def load(server):
    """REQUESTS home pages, CLIENTS at a time, rotating over the demo hosts; their statuses."""
    hosts = list(DEMO_HOSTS.values())

    def one(i):
        try:
            return server.get(hosts[i % len(hosts)], "/").status
        except OSError as error:  # a time-out: the server waited for a connection
            return type(error).__name__

    with ThreadPoolExecutor(max_workers=CLIENTS) as clients:
        return list(clients.map(one, range(REQUESTS)))


@pytest.mark.parametrize("server", SERVERS)
def test_connections_stay_bounded_under_load(django_db_setup, server):
    command, most = SERVERS[server]
    name = f"conn-bound-{server}"
    env = on_test_database()
    env["DATABASE_URL"] += f"?application_name={name}"
    with serving(command, env=env) as running, ConnectionCounter(name) as count:
        statuses = load(running)
        after = count.now()
    answers = {status: statuses.count(status) for status in set(statuses)}
    assert (count.peak, answers) == (count.peak, {200: REQUESTS})
    assert 0 < count.peak <= most, f"{server}: {count.peak} connections (at most {most})"
    assert after <= most
