"""Operator commands reach a running server without a shared cache (issue 12, item 1).

A real server process with the local-memory cache (plain ``make run``), and commands run in
other processes, as an operator would: every change must be served within
TENANCY_RESOLVER_REVALIDATE_SECONDS, and no request may ever answer 500 meanwhile.
"""

import time
import uuid

import pytest
from django.db import connection

from tenants.models import Domain
from tenants.runtime import resolution
from tenants.runtime.context import scopes_disabled
from tests.support.modes import SCHEMA_MODE
from tests.support.servers import manage, on_test_database, serving

INTERVAL = 0.5  # TENANCY_RESOLVER_REVALIDATE_SECONDS of the servers here


def _env():
    return on_test_database(CACHE_URL="locmemcache://")


def _tenants(*args, check=True):
    return manage("tenants", *args, env=_env(), check=check)


def _serve(seconds):
    env = {"CACHE_URL": "locmemcache://", "TENANCY_RESOLVER_REVALIDATE_SECONDS": str(seconds)}
    return serving(env=on_test_database(**env))


def fetch(server, host):
    """(status, page text) of ``host``'s home page."""
    response = server.get(host)
    return response.status, response.text


def _until(server, host, wanted, within):
    """Poll ``host`` until its answer satisfies ``wanted(status, body)``; every answer on the
    way is recorded, and none may be a 500."""
    seen = []
    deadline = time.monotonic() + within
    while True:
        status, body = fetch(server, host)
        seen.append(status)
        assert status != 500, f"a 500 while waiting for a change ({seen}):\n{body[:2000]}"
        if wanted(status, body):
            return seen
        assert time.monotonic() < deadline, f"not seen within {within}s: {seen[-5:]}"
        time.sleep(0.05)


@pytest.fixture
def fresh_tenant(django_db_setup):
    slug = f"stale-{uuid.uuid4().hex[:6]}"
    _tenants("create", "--name", f"Stale {slug}", "--slug", slug)
    yield slug
    _tenants("delete", slug, "--yes", *(["--drop-schema"] if SCHEMA_MODE else []), check=False)


def test_commands_in_another_process_reach_a_running_server(fresh_tenant):
    slug = fresh_tenant
    host, extra = f"{slug}.localhost", f"{slug}.example"
    name = f"Welcome to Stale {slug}"
    within = INTERVAL + 10  # the interval, and a loaded machine's slack
    with _serve(INTERVAL) as server:
        assert fetch(server, host)[1].count(name) == 1
        # A host this server already looked up (unknown: the default tenant) is added.
        assert name not in fetch(server, extra)[1]
        manage("domains", "add", slug, extra, env=_env())
        _until(server, extra, lambda status, body: name in body, within)

        # Both hosts cached now: each must follow the change (a host looked up for the first
        # time after it would show it at once, whatever the invalidation does).
        assert fetch(server, host)[0] == 200
        _tenants("deactivate", slug)
        _until(server, host, lambda status, body: status == 403, within)
        _until(server, extra, lambda status, body: status == 403, within)
        _tenants("reactivate", slug)
        _until(server, host, lambda status, body: status == 200 and name in body, within)

        _tenants("delete", slug, "--yes", *(["--drop-schema"] if SCHEMA_MODE else []))
        # Its hosts are unknown now: the default tenant's site, never a 500 on the way.
        _until(server, host, lambda status, body: status == 200 and name not in body, within)
        _until(server, extra, lambda status, body: status == 200 and name not in body, within)
        # Another tenant's host kept its own site throughout.
        assert "Acme rockets" in fetch(server, "acme.localhost")[1]


@pytest.mark.schema_only
def test_a_tenant_whose_schema_is_gone_is_site_not_found_never_a_500(fresh_tenant):
    """Between the delete and this server's next revalidation (an hour here) it still has the
    tenant in its cache: the queries fail on the dropped schema, and the answer is a 404."""
    slug = fresh_tenant
    host = f"{slug}.localhost"
    with _serve(3600) as server:
        assert fetch(server, host)[0] == 200
        _tenants("delete", slug, "--yes", "--drop-schema")
        status, body = fetch(server, host)
        assert status == 404, body[:2000]
        assert "Site not found" in body
        # Having found out, the server forgot the tenant: its host is unknown now.
        status, body = fetch(server, host)
        assert status == 200 and "Welcome to Stale" not in body
        assert "Acme rockets" in fetch(server, "acme.localhost")[1]


@pytest.mark.django_db
def test_the_generation_is_read_at_most_once_per_interval(
    settings, host_client, tenants, django_assert_num_queries, django_assert_max_num_queries
):
    """Between two checks a warm request costs no query; a check costs one, and a change
    written by another process (no signal here: a plain UPDATE) is seen at the next one."""
    settings.TENANCY_RESOLVER_REVALIDATE_SECONDS = 3600
    client = host_client("acme.localhost")
    client.get("/")
    with django_assert_num_queries(1):  # the page's own content query only
        assert client.get("/").context["request"].tenant.slug == "acme"
    with scopes_disabled():
        Domain.objects.filter(domain="acme.localhost").update(
            tenant=tenants["global"], is_primary=False
        )
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tenants_generation SET value = value + 1")
    assert client.get("/").context["request"].tenant.slug == "acme"  # not due yet
    resolution._next_check = 0.0  # the interval is over
    with django_assert_max_num_queries(10) as captured:
        assert client.get("/").context["request"].tenant.slug == "global"
    # The generation once, first; then the host's lookup, global's page and its branding.
    reads = [q["sql"] for q in captured if not q["sql"].startswith("SET search_path")]
    assert ["tenants_generation" in sql for sql in reads] == [True] + [False] * (len(reads) - 1)
