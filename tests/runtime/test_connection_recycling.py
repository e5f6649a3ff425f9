"""Schema mode: connections are recycled after more than TENANCY_CONNECTION_MAX_SCHEMAS schemas,
and neither that nor the search_path-as-health-check ever changes where a query runs.

Each test drives its own connection (a second DatabaseWrapper on the test database, outside the
test's transaction) the way Django drives a request's connection: queries, then
``close_if_unusable_or_obsolete()`` at the request's end (Django's request_finished handler),
with CONN_HEALTH_CHECKS on.
"""

import pytest
from django.conf import settings
from django.db import connection, connections

from tenants.runtime.context import tenant_context
from tests.support.demo import DEMO_TITLES

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.schema_only,
    pytest.mark.skipif(
        settings.TENANCY_TRANSACTION_POOLER,
        reason="session state only: behind a transaction pooler nothing is set for the session "
        "and the pooler's server_lifetime bounds server sessions",
    ),
]

ORDER = ["acme", "techinnov", "global", "jcw-site", "default"]


@pytest.fixture
def request_connection():
    """A fresh connection to the test database, closed afterwards."""
    conn = connections.create_connection("default")
    assert conn.settings_dict["NAME"] == connection.settings_dict["NAME"]
    assert conn.settings_dict["CONN_HEALTH_CHECKS"]
    yield conn
    conn.close()


def serve(conn, tenant):
    """One 'request' for ``tenant``: what it sees and on which server process, then its end."""
    with tenant_context(tenant), conn.cursor() as cursor:
        cursor.execute(
            "SELECT pg_backend_pid(), current_schema(),"
            " (SELECT string_agg(title, '|' ORDER BY title) FROM home_pagecontent)"
        )
        pid, schema, titles = cursor.fetchone()
    conn.close_if_unusable_or_obsolete()
    return pid, schema, titles.split("|")


def test_connection_is_recycled_after_max_distinct_schemas(settings, tenants, request_connection):
    settings.TENANCY_CONNECTION_MAX_SCHEMAS = 2
    first, _, _ = serve(request_connection, tenants["acme"])
    again, _, _ = serve(request_connection, tenants["acme"])
    assert again == first  # one schema so far, however many requests
    assert serve(request_connection, tenants["techinnov"])[0] == first  # two: the ceiling
    assert serve(request_connection, tenants["acme"])[0] == first
    assert serve(request_connection, tenants["global"])[0] == first  # a third is served ...
    fresh, _, _ = serve(request_connection, tenants["global"])
    assert fresh != first  # ... and the connection closed at that request's end
    assert serve(request_connection, tenants["acme"])[0] == fresh


def serve_public(conn):
    """A 'request' with no tenant active (a cold host lookup): the public schema."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), current_schema()")
        pid, schema = cursor.fetchone()
    conn.close_if_unusable_or_obsolete()
    assert schema == "public"
    return pid


def test_the_public_schema_does_not_count_towards_the_ceiling(
    settings, tenants, request_connection
):
    """A worker serving exactly TENANCY_CONNECTION_MAX_SCHEMAS tenants must not recycle because
    it also looked up hosts in public: the ceiling counts tenant schemas."""
    settings.TENANCY_CONNECTION_MAX_SCHEMAS = 2
    first = serve_public(request_connection)
    assert serve(request_connection, tenants["acme"])[0] == first
    assert serve(request_connection, tenants["techinnov"])[0] == first
    assert serve_public(request_connection) == first
    assert serve(request_connection, tenants["acme"])[0] == first  # still the same session
    serve(request_connection, tenants["global"])  # a third tenant schema: over the ceiling
    assert serve_public(request_connection) != first


def test_no_recycling_when_the_ceiling_is_off(settings, tenants, request_connection):
    settings.TENANCY_CONNECTION_MAX_SCHEMAS = 0
    pids = {serve(request_connection, tenants[slug])[0] for slug in ORDER * 2}
    assert len(pids) == 1


def test_recycling_never_changes_the_schema_a_query_runs_in(settings, tenants, request_connection):
    settings.TENANCY_CONNECTION_MAX_SCHEMAS = 2
    pids = set()
    for slug in ORDER * 3 + ["acme", "acme", "global", "acme"]:
        tenant = tenants[slug]
        pid, schema, titles = serve(request_connection, tenant)
        pids.add(pid)
        assert schema == tenant.schema_name
        assert DEMO_TITLES[slug] in titles
        others = {title for other, title in DEMO_TITLES.items() if other != slug}
        assert not others & set(titles)
    assert len(pids) > 3  # it did recycle, several times


def test_a_dead_connection_is_replaced_when_the_search_path_is_the_health_check(
    tenants, request_connection
):
    """Switching tenants at the start of a request sends SET search_path instead of Django's
    SELECT 1 health check; a connection the server dropped must still be noticed and replaced."""
    first, schema, _ = serve(request_connection, tenants["acme"])
    assert schema == "acme"
    with connection.cursor() as cursor:  # the test's own connection ends the other's session
        cursor.execute("SELECT pg_terminate_backend(%s)", [first])
    second, schema, titles = serve(request_connection, tenants["techinnov"])
    assert second != first
    assert schema == "techinnov" and DEMO_TITLES["techinnov"] in titles


def test_switching_tenant_at_request_start_costs_no_extra_round_trip(
    settings, tenants, request_connection
):
    """The SET that switches schema replaces the health check's SELECT 1: one statement before
    the request's first query, as in plain Django."""
    settings.TENANCY_CONNECTION_MAX_SCHEMAS = 0
    serve(request_connection, tenants["acme"])
    sent = []
    raw = request_connection.connection
    original = type(raw).cursor  # psycopg's: counts what reaches the server, health checks too

    def counting_cursor(self, *args, **kwargs):
        cursor = original(self, *args, **kwargs)
        execute = cursor.execute

        def recorded(query, *a, **k):
            sent.append(str(query))
            return execute(query, *a, **k)

        cursor.execute = recorded
        return cursor

    type(raw).cursor = counting_cursor
    try:
        serve(request_connection, tenants["techinnov"])
        serve(request_connection, tenants["techinnov"])
    finally:
        type(raw).cursor = original
    switch, same = sent[:2], sent[2:]
    assert switch[0] == 'SET search_path = "techinnov"' and "pg_backend_pid" in switch[1]
    assert same[0] == "SELECT 1" and "pg_backend_pid" in same[1]  # Django's own health check
    assert len(sent) == 4
