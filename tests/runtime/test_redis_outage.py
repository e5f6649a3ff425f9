"""Redis as the cache (CACHE_URL=redis://...): an outage never answers 500, and deployments
sharing one Redis never share an entry (issues 14 and 13, item 7).

Against a real redis-server that the test starts on a loopback port of TEST_SERVER_PORTS and
stops mid-test, and a real gunicorn process on the test database.
"""

import socket
import threading
import time
import uuid

import pytest

from tenants.runtime.rediscache import BACKOFF_SECONDS
from tests.support.servers import free_port, gunicorn, manage, on_test_database, start_server
from tests.support.services import RedisServer

# A marker of each tenant's home page, from its demo content.
MARKERS = {
    "acme.localhost": "Acme rockets",
    "global.localhost": "Global Services worldwide",
    "localhost": "One codebase, many sites",
}


@pytest.fixture
def redis_server():
    with RedisServer() as server:
        yield server


class SilentServer:
    """Accepts connections and never answers: a Redis that hangs (not refused, just silent).
    Counts the connections made to it."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", free_port()))
        self.port = self.socket.getsockname()[1]
        self.connections = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.connections.append(self.socket.accept()[0])
            except OSError:
                return

    def close(self):
        self.socket.close()
        for connection in self.connections:
            connection.close()


def _serve(tmp_path, cache_url, **env):
    """gunicorn as in production, on the test database, with ``cache_url`` as its cache."""
    env = on_test_database(
        DEBUG="False", CACHE_URL=cache_url, TENANCY_RESOLVER_REVALIDATE_SECONDS="0.5", **env
    )
    command = gunicorn("--workers=1", "--threads=4", "--graceful-timeout=2", "--no-control-socket")
    return start_server(command, env=env, log_dir=tmp_path, ready_path="/static/home/site.css")


def _manage(*args, cache_url, **env):
    return manage(*args, env=on_test_database(CACHE_URL=cache_url, **env), check=False)


def _every_site_serves_itself(server, rounds, slowest=5.0):
    """``rounds`` requests to each site: each 200 with its own page, none slower than
    ``slowest`` seconds (a loaded machine's slack: without socket timeouts a request to a
    silent Redis never ends, see the test of one below)."""
    for _ in range(rounds):
        for host, marker in MARKERS.items():
            started = time.monotonic()
            status, _, body = server.get(host)
            took = time.monotonic() - started
            assert status == 200, body[:2000]
            assert marker in body.decode()
            assert all(other not in body.decode() for other in MARKERS.values() if other != marker)
            assert took < slowest, f"{host} took {took:.2f}s"


def _set_site_name(slug, name, cache_url):
    code = (
        "from home.models import SiteSettings; s = SiteSettings.objects.first() or "
        f"SiteSettings(); s.site_name = {name!r}; s.save()"
    )
    done = _manage(
        "tenants", "run", "--tenant", slug, "--", "shell", "-c", code, cache_url=cache_url
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def restore_acme_branding(django_db_setup, django_db_blocker):
    yield
    code = "from home.models import SiteSettings; SiteSettings.objects.all().delete()"
    _manage(
        "tenants", "run", "--tenant", "acme", "--", "shell", "-c", code, cache_url="locmemcache://"
    )


def test_a_redis_outage_slows_nothing_down_and_answers_no_500(
    tmp_path, redis_server, restore_acme_branding
):
    url = redis_server.url
    server = _serve(tmp_path, url)
    extra = f"outage-{uuid.uuid4().hex[:6]}.example"
    try:
        _every_site_serves_itself(server, rounds=3)
        assert any(key.endswith(":home:branding") for key in redis_server.stored_keys())

        redis_server.stop()
        _every_site_serves_itself(server, rounds=10)
        # Commands work too, and what they change is served (host lookups need no cache).
        seeded = _manage("seed_demo_tenants", cache_url=url)
        assert seeded.returncode == 0 and "Traceback" not in seeded.stderr, seeded.stderr
        assert _manage("domains", "add", "acme", extra, cache_url=url).returncode == 0
        deadline = time.monotonic() + 5
        while "Acme rockets" not in server.get(extra)[2].decode():
            assert time.monotonic() < deadline, "a domain added during the outage is not served"
            time.sleep(0.1)
        _every_site_serves_itself(server, rounds=5)

        redis_server.start()  # back, empty
        time.sleep(2.5)  # the back-off (tenants.runtime.rediscache.BACKOFF_SECONDS) runs out
        _every_site_serves_itself(server, rounds=3)
        assert any(key.endswith(":home:branding") for key in redis_server.stored_keys())
        # A branding change is seen at once again: made in another process, through Redis.
        _set_site_name("acme", "Acme after the outage", url)
        assert "Acme after the outage" in server.get("acme.localhost")[2].decode()
        assert "Acme after the outage" not in server.get("global.localhost")[2].decode()
    finally:
        server.stop()
        _manage("domains", "remove", extra, cache_url="locmemcache://")
    log = server.log.read_text()
    assert " 500 " not in log and "Traceback" not in log, log[-3000:]
    # One warning when Redis went, one when it came back: not one per request.
    assert log.count("is unreachable") == 1, log[-3000:]
    assert log.count("is reachable again") == 1, log[-3000:]


def test_a_silent_redis_is_not_waited_for_on_every_request(tmp_path, django_db_setup):
    """Each cache call would wait for its timeout (0.25 s): after one has, calls fail at once
    for a while (the back-off), so pages stay fast and the server is not hammered."""
    silent = SilentServer()
    server = _serve(tmp_path, f"redis://127.0.0.1:{silent.port}/0")
    try:
        server.get("acme.localhost")  # the first call waits for its timeout, once
        started = time.monotonic()
        _every_site_serves_itself(server, rounds=5)
        took = time.monotonic() - started
        attempts = len(silent.connections)
    finally:
        server.stop()
        silent.close()
    # 15 pages with two cache calls each: 30 connections, each waiting 0.25 s, without the
    # back-off. With it, one try per back-off (2 s) while the pages are served.
    assert attempts <= 2 + took / BACKOFF_SECONDS, f"{attempts} connections in {took:.1f}s"
    assert server.log.read_text().count("is unreachable") == 1


def test_deployments_sharing_one_redis_share_no_entry(
    tmp_path, redis_server, restore_acme_branding
):
    """Two deployments on one Redis database: "blue" names its prefix with CACHE_KEY_PREFIX,
    "green" in CACHE_URL. Blue caches a branding for its tenant of acme's id; green, whose
    tenant of that id is another site in a real second deployment, never reads it."""
    blue_url, green_url = redis_server.url, redis_server.url + "?key_prefix=green"
    blue = _serve(tmp_path, blue_url, CACHE_KEY_PREFIX="blue")
    green = _serve(tmp_path, green_url)
    try:
        for server in (blue, green):
            assert "Acme rockets" in server.get("acme.localhost")[2].decode()
        code = (
            "from django.core.cache import cache; from home.models import SiteSettings; "
            "cache.set(SiteSettings.CACHE_KEY, SiteSettings(site_name='Blue site'), 300)"
        )
        done = _manage(
            "tenants", "run", "--tenant", "acme", "--", "shell", "-c", code,
            cache_url=blue_url, CACHE_KEY_PREFIX="blue",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "Blue site" in blue.get("acme.localhost")[2].decode()
        assert "Blue site" not in green.get("acme.localhost")[2].decode()
    finally:
        blue.stop()
        green.stop()
    keys = redis_server.stored_keys()
    assert keys and all(k.startswith(("blue:", "green:")) for k in keys), keys
    assert any(k.startswith("blue:") for k in keys) and any(k.startswith("green:") for k in keys)


@pytest.mark.django_db  # (sets up the test database when this file runs alone)
def test_without_a_prefix_each_deployment_gets_its_own():
    """The default prefix comes from SECRET_KEY: deployments differ, processes of one agree."""

    def prefix(secret):
        code = "from django.conf import settings; print(settings.CACHES['default']['KEY_PREFIX'])"
        env = {"SECRET_KEY": secret, "CACHE_URL": "redis://127.0.0.1:1/0"}
        return manage("shell", "-c", code, env=env).stdout.strip()

    assert prefix("deployment one") == prefix("deployment one") != prefix("deployment two")
