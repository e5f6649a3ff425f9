"""Sign-ups through a real server (gunicorn, several processes) on a committed PostgreSQL
database: concurrent sign-ups, and a provisioning process killed half-way.

The server runs in the suite's mode (row or schema) but always on PostgreSQL, in a database of
its own named after TEST_POSTGRES_URL's (``<name>_live_<mode>``), made and dropped here.
"""

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support import postgres, servers
from tests.support.members import PASSWORD
from tests.support.modes import MODE

POOL_SIZE = 5


def _base_url():
    return os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/tenantsite")


class LiveSite:
    def __init__(self, tmp):
        base = _base_url()
        # Named after this run's test database, so parallel checkouts never share it.
        stem = os.environ.get("TEST_DATABASE_NAME") or base.rsplit("/", 1)[1]
        self.db_name = f"{stem}_live_{MODE}"
        self.db_url = base.rsplit("/", 1)[0] + "/" + self.db_name
        self.port = servers.free_port()
        self.log_dir = tmp
        self.env = {
            "TENANCY_MODE": MODE,
            "DATABASE_URL": self.db_url,
            "DJANGO_SETTINGS_MODULE": "tests.support.live_settings",
            "PYTHONPATH": str(servers.REPO),
            "TENANCY_SCHEMA_POOL_SIZE": str(POOL_SIZE),
            "TENANCY_SCHEMA_POOL_REFILL": "background",
            "TENANCY_URL_PORT": str(self.port),
            "CACHE_URL": "locmemcache://",
        }
        self.server = None

    # Database -----------------------------------------------------------------------------------

    def drop_database(self):
        postgres.drop_database(self.db_url)

    def query(self, query, params=None):
        return postgres.postgres_rows(self.db_url, query, params)

    def count(self, query, params=None):
        return self.query(query, params)[0][0]

    def tenant_schema_mismatch(self):
        """Schemas without a tenant and tenants without a schema (schema mode)."""
        if MODE != "schema":
            return set()
        schemas = {
            row[0]
            for row in self.query(
                "SELECT nspname FROM pg_namespace WHERE nspname !~ '^(pg_|_)' "
                "AND nspname NOT IN ('public', 'information_schema')"
            )
        }
        tenants = {
            row[0]
            for row in self.query(
                "SELECT schema_name FROM tenants_tenant WHERE schema_name <> 'public'"
            )
        }
        return schemas ^ tenants

    # Processes ----------------------------------------------------------------------------------

    def manage(self, *args):
        return servers.manage(*args, env=self.env, timeout=300)

    def python(self, code, *args, **kwargs):
        return subprocess.Popen(
            [sys.executable, "-c", code, *args],
            cwd=servers.REPO,
            env={**os.environ, **self.env},
            **kwargs,
        )

    def start(self):
        postgres.create_database(self.db_url)
        self.manage("migrate", "--noinput", "-v", "0")
        self.manage("seed_demo_tenants", "-v", "0")
        if MODE == "schema":
            self.manage("prepare_tenant_schemas", "--spares", str(POOL_SIZE))
        command = servers.gunicorn(
            "--workers=3", "--worker-class=gthread", "--threads=8", "--timeout=120"
        )
        self.server = servers.start_server(
            command, env=self.env, port=self.port, log_dir=self.log_dir
        )
        status = self.get("localhost")[0]
        assert status == 200, f"The test server answered {status}:\n{self.log_text()}"

    def stop(self):
        if self.server is not None:
            self.server.stop()

    def log_text(self):
        return self.server.log_text() if self.server is not None else ""

    # HTTP ---------------------------------------------------------------------------------------

    def request(self, host, path, body=None):
        response = self.server.request(
            host,
            path,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            timeout=120,
        )
        return response.status, response.body

    def get(self, host, path="/"):
        return self.request(host, path)

    def sign_up(self, username, **extra):
        status, body = self.request(
            "localhost",
            "/api/register/",
            {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
            | extra,
        )
        return status, json.loads(body)


def serve_live(site):
    """Start ``site``, yield it, then stop it and drop its database; a module fixture's body.
    Fails if the server logged a traceback meanwhile."""
    try:
        site.start()
        yield site
    finally:
        site.stop()
        log = site.log_text()
        site.drop_database()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    yield from serve_live(LiveSite(tmp_path_factory.mktemp("live")))


def all_at_once(count, action):
    """Run ``action(i)`` for i in range(count) in as many threads, released together."""
    barrier = threading.Barrier(count)

    def run(i):
        barrier.wait()
        return action(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_twenty_concurrent_sign_ups_with_one_username(live):
    results = all_at_once(20, lambda _i: live.sign_up("samename", site_name="Same Name"))
    created = [body for status, body in results if status == 201]
    refused = [body for status, body in results if status != 201]
    assert len(created) == 1
    assert len(refused) == 19
    for status, body in results:
        if status != 201:
            assert status == 400
            message = body["errors"]["username"][0]["message"]
            assert "already exists" in message or "taken" in message, body
    assert live.count("SELECT count(*) FROM auth_user WHERE username = 'samename'") == 1
    assert live.count("SELECT count(*) FROM tenants_tenant WHERE slug = 'samename'") == 1
    assert live.count("SELECT count(*) FROM tenants_domain WHERE domain LIKE 'samename.%%'") == 1
    assert live.tenant_schema_mismatch() == set()
    status, html = live.get("samename.localhost")
    assert status == 200 and b"Same Name is live" in html


def test_fifty_concurrent_sign_ups_with_different_names(live):
    names = [f"crowd-{i:02d}" for i in range(50)]
    results = all_at_once(50, lambda i: live.sign_up(names[i]))
    assert [status for status, _body in results] == [201] * 50, results
    assert sorted(body["tenant"] for _status, body in results) == names
    assert live.tenant_schema_mismatch() == set()
    for name in names:
        status, html = live.get(f"{name}.localhost")
        assert status == 200 and f"{name}&#x27;s site is live".encode() in html


def test_the_owner_signs_in_to_the_new_sites_admin_at_once(live):
    assert live.sign_up("quick-owner", site_name="Quick Owner")[0] == 201
    owner = servers.Visitor(live.server, timeout=60)
    assert owner.login("quick-owner.localhost", "quick-owner", PASSWORD)
    assert owner.request("quick-owner.localhost", "/admin/").status == 200
    pages = owner.request("quick-owner.localhost", "/admin/home/pagecontent/")
    assert pages.status == 200
    assert "Make it yours" in pages.text and "Quick Owner is live" in pages.text


@pytest.mark.schema_only
def test_the_server_refills_the_spare_pool_in_the_background(live):
    live.sign_up("pool-user")
    prefix = "_spare_"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        spares = live.count(
            "SELECT count(*) FROM pg_namespace WHERE starts_with(nspname, %s)", [prefix]
        )
        if spares >= POOL_SIZE:
            break
        time.sleep(0.5)
    assert spares >= POOL_SIZE


PAUSE_AT_STEP = """
import pathlib, sys, time
import django
django.setup()
from accounts.services import sign_up
from tenants.provisioning.services import provisioning_step

def pause(sender, step, **kwargs):
    if step == sys.argv[1]:
        pathlib.Path(sys.argv[2]).write_text(step)
        time.sleep(120)

provisioning_step.connect(pause, weak=False)
sign_up(username=sys.argv[3], email="crash@example.com", password="correct horse battery")
"""

CRASH_STEPS = (["clone"] if MODE == "schema" else []) + ["domain", "owner"]


@pytest.mark.parametrize("step", CRASH_STEPS)
def test_a_sign_up_killed_half_way_leaves_nothing_in_the_way(live, tmp_path, step):
    username = f"crash-{step}"
    marker = tmp_path / "paused"
    process = live.python(PAUSE_AT_STEP, step, str(marker), username)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), "the provisioning process never reached the step"
    process.kill()  # SIGKILL: no cleanup code runs
    process.wait()
    # The next sign-up with that name (through the server) finds nothing in its way.
    deadline = time.monotonic() + 30
    while True:
        status, body = live.sign_up(username)
        if status == 201 or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # PostgreSQL may take a moment to notice the dead client
    assert status == 201, body
    assert live.count("SELECT count(*) FROM tenants_tenant WHERE slug = %s", [username]) == 1
    assert live.tenant_schema_mismatch() == set()


UNSAFE_SHELL_USER = """
import django
django.setup()
from django.contrib.auth import get_user_model
try:
    get_user_model().objects.create_user("www", "w@example.com", "correct horse battery")
except Exception as error:
    print(type(error).__name__, error)
"""


def test_a_user_made_outside_a_transaction_is_undone_if_its_site_fails(live):
    process = live.python(UNSAFE_SHELL_USER, stdout=subprocess.PIPE, text=True)
    out, _ = process.communicate(timeout=120)
    assert "SiteNameUnavailable" in out and "reserved" in out
    assert live.count("SELECT count(*) FROM auth_user WHERE username = 'www'") == 0
