"""PostgreSQL stopped, restarted and slow, under a real gunicorn (issue 14, item 3).

A private cluster per module (tests/support/services.py), made ready as an operator would
(``ensure_database``, ``tenants migrate``, ``seed_demo_tenants``; the two roles of row-level
security first in row mode), and gunicorn with several threads on it:

* cluster stopped (a crash: ``immediate``): every request answers the 503 page, in its own
  tenant's name, quickly; never a 500, never another tenant's page;
* cluster back: every host serves its own tenant again within a few seconds, on persistent
  connections and on the native pool; a sign-up acknowledged before the crash and one made
  right after are both there;
* a statement blocked by a lock answers 503 after DATABASE_STATEMENT_TIMEOUT, and the page
  works again once the lock is gone;
* a command against the stopped cluster exits 1 with one line.
"""

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.db import connection

from tenants.runtime import unavailable
from tests.support.demo import DEMO_HOSTS, DEMO_TITLES
from tests.support.members import PASSWORD
from tests.support.modes import MODE, ROW_LEVEL_SECURITY
from tests.support.servers import REPO, gunicorn, manage, start_server
from tests.support.services import PostgresCluster

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="PostgreSQL outages: a private PostgreSQL cluster is stopped and restarted "
    "(these run in the row-mode-on-PostgreSQL and schema-mode passes)",
)

CONNECT_TIMEOUT = 2
SLACK = 3.0  # seconds a 503 may take beyond the wait it reports
RECOVERY = 5.0  # seconds after the cluster answers again within which every host serves
NAMES = {
    "default": "Default Tenant",
    "acme": "Acme Rocket Works",  # its branding (below): shown when cached
    "jcw-site": "JCW Trading Hub",
    "techinnov": "Tech Innovations",
    "global": "Global Services",
}
ACME_COLOUR = "#aa3300"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(cluster, environment of a server on it), migrated and seeded with the demo tenants."""
    with PostgresCluster() as cluster:
        url = cluster.url("tenantsite")
        env = {
            "TENANCY_MODE": MODE,
            "DATABASE_URL": url,
            "DEBUG": "False",
            "CACHE_URL": "locmemcache://",
            "TENANCY_SCHEMA_POOL_SIZE": "0",
            "TENANCY_SCHEMA_POOL_REFILL": "command",
            "DATABASE_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
            "MEDIA_ROOT": str(tmp_path_factory.mktemp("media")),
        }
        if ROW_LEVEL_SECURITY:
            roles = [sys.executable, "scripts/postgres_roles.py", url]
            env["DATABASE_URL"] = subprocess.check_output(roles, cwd=REPO, text=True).strip()
            env["DATABASE_APP_URL"] = cluster.url("tenantsite", "tenantsite_app")
        for command in (["ensure_database"], ["tenants", "migrate"], ["seed_demo_tenants"]):
            manage(*command, env=env)
        _brand_acme(cluster)
        yield cluster, env


def _brand_acme(cluster):
    schema = "acme." if MODE == "schema" else ""
    cluster.execute(
        f"INSERT INTO {schema}home_sitesettings "
        "(tenant_id, site_name, tagline, brand_colour, logo, logo_url) "
        f"SELECT id, '{NAMES['acme']}', '', '{ACME_COLOUR}', '', '' "
        "FROM tenants_tenant WHERE slug = 'acme'",
        "tenantsite",
    )


def _serve(env, tmp_path, workers=2, **extra):
    command = gunicorn(f"--workers={workers}", "--threads=4", "--graceful-timeout=2")
    return start_server(
        [*command, "--no-control-socket"],
        env={**env, **extra},
        log_dir=tmp_path,
        ready_path="/static/home/site.css",
    )


def _timed_get(server, host, path="/"):
    started = time.monotonic()
    response = server.request(host, path, timeout=60)
    return response, time.monotonic() - started


def _served_right(response, slug) -> bool:
    """200 with ``slug``'s own home page, and no other demo tenant's."""
    text = response.body.decode(errors="replace")
    others = [title for other, title in DEMO_TITLES.items() if other != slug]
    return (
        response.status == 200
        and DEMO_TITLES[slug] in text
        and not any(title in text for title in others)
    )


def _all_hosts(server, rounds=1):
    """(slug, response, seconds) for every demo host, ``rounds`` times, 8 clients at once."""
    jobs = [slug for _ in range(rounds) for slug in DEMO_HOSTS]
    with ThreadPoolExecutor(max_workers=8) as clients:
        results = clients.map(lambda slug: (slug, *_timed_get(server, DEMO_HOSTS[slug])), jobs)
        return list(results)


def _assert_unavailable_page(slug, response, seconds, most_seconds) -> bool:
    """The 503 page, quickly, for ``slug`` or for no tenant, never another's. True when it
    is in ``slug``'s look (the host lookup was cached), False for the plain page (the lookup
    or its periodic revalidation needed the database)."""
    text = response.body.decode(errors="replace")
    assert response.status == 503, (slug, response.status, text[:2000])
    assert response.headers["Retry-After"].isdigit()
    assert seconds < most_seconds, (slug, seconds)
    assert not any(title in text for title in DEMO_TITLES.values())
    names = [NAMES[slug]] + (["Acme Corporation"] if slug == "acme" else [])
    others = [n for other, n in NAMES.items() if n not in names]
    assert not any(name in text for name in others), (slug, text)
    if "<title>Temporarily unavailable</title>" in text:
        return False
    assert any(f"Temporarily unavailable · {name}" in text for name in names), text
    return True


def _sign_up(server, username):
    body = json.dumps(
        {"username": username, "email": f"{username}@example.com"} | {"password": PASSWORD}
    ).encode()
    return server.request(
        "localhost",
        "/api/register/",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )


def _site_host(username):
    return f"{username}.localhost"


def _wait_for_recovery(server):
    """Seconds from now until every demo host answers its own page (one full round)."""
    started = time.monotonic()
    while time.monotonic() - started < 60:
        results = _all_hosts(server)
        if all(_served_right(response, slug) for slug, response, _ in results):
            return time.monotonic() - started
        assert all(r.status in (200, 503) for _, r, _ in results), [r.status for *_, r in []]
        for slug, response, _ in results:
            assert response.status == 503 or _served_right(response, slug), slug
        time.sleep(0.2)
    raise AssertionError("the site did not recover within 60 s")


POOL = {"DATABASE_POOL": "true", "DATABASE_POOL_TIMEOUT": "2"}


@pytest.mark.parametrize(
    "connections, extra_env, wait, outage",
    [
        ("persistent", {}, CONNECT_TIMEOUT, 0),
        # Long enough for psycopg_pool's retry delay to grow (1, 2, 4, 8 s ...).
        ("pool", POOL, 2, 20),
    ],
)
def test_a_restart_is_503s_then_the_right_tenants_again(
    site, tmp_path, connections, extra_env, wait, outage
):
    cluster, env = site
    server = _serve(env, tmp_path, **extra_env)
    try:
        for slug, response, _ in _all_hosts(server, rounds=4):
            assert _served_right(response, slug), (slug, response.status)
        before = f"before{connections}"
        assert _sign_up(server, before).status == 201

        time.sleep(1.5)  # every worker revalidated its host lookups after the sign-up
        _all_hosts(server, rounds=4)

        cluster.stop("immediate")  # a crash: no shutdown checkpoint
        during = _all_hosts(server, rounds=4)
        in_look = [_assert_unavailable_page(s, r, t, wait + SLACK) for s, r, t in during]
        assert in_look.count(True) >= len(during) // 2, in_look
        cold, seconds = _timed_get(server, "never-seen.example")  # the host lookup fails
        assert (cold.status, seconds < wait + SLACK) == (503, True)
        refused = _sign_up(server, f"during{connections}")
        assert refused.status == 503
        deadline = time.monotonic() + outage
        while time.monotonic() < deadline:  # requests keep coming during the outage
            for slug, response, seconds in _all_hosts(server):
                _assert_unavailable_page(slug, response, seconds, wait + SLACK)

        cluster.start()
        recovered_in = _wait_for_recovery(server)
        assert recovered_in < RECOVERY, f"{connections}: recovered in {recovered_in:.1f} s"
        print(f"{MODE}, {connections}: every host served again {recovered_in:.2f} s after start")
        for slug, response, _ in _all_hosts(server, rounds=4):  # errors only during the outage
            assert _served_right(response, slug), (slug, response.status)
        after = f"after{connections}"
        assert _sign_up(server, after).status == 201
        for username in (before, after):
            page = server.request(_site_host(username), "/", timeout=30)
            assert page.status == 200 and username in page.text.lower(), username
        assert server.request(_site_host(f"during{connections}"), "/").status in (200, 404)
    finally:
        server.stop()
    log = server.log_text()
    assert "Traceback" not in log, log[-5000:]
    warnings = log.count("Database unavailable, answering 503")
    most = 2 * (2 + outage // unavailable.LOG_INTERVAL_SECONDS)  # per worker process
    assert 1 <= warnings <= most, log[-5000:]


def test_a_statement_blocked_by_a_lock_answers_503_within_the_timeout(site, tmp_path):
    cluster, env = site
    server = _serve(env, tmp_path, workers=1, DATABASE_STATEMENT_TIMEOUT="1")
    table = "acme.home_pagecontent" if MODE == "schema" else "home_pagecontent"
    try:
        for _ in range(4):  # every thread's connection open, acme's branding cached
            assert _served_right(server.request("acme.localhost", "/"), "acme")
        with psycopg.connect(cluster.url("tenantsite")) as locker:
            locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            response, seconds = _timed_get(server, "acme.localhost")
            _assert_unavailable_page("acme", response, seconds, 1 + SLACK)
            assert seconds >= 0.9, seconds
            assert f"--brand: {ACME_COLOUR}" in response.text  # its branding, from the cache
            locker.rollback()
        assert _served_right(server.request("acme.localhost", "/"), "acme")
    finally:
        server.stop()
    assert "Traceback" not in server.log_text()


def test_a_command_against_a_stopped_cluster_is_one_line(site):
    cluster, env = site
    cluster.stop()
    try:
        done = manage("tenants", "list", env=env, check=False, timeout=CONNECT_TIMEOUT + 30)
    finally:
        cluster.start()
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "database" in lines[0].lower(), done.stderr
    assert "Traceback" not in done.stderr
