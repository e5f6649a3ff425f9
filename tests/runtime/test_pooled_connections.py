"""Schema mode on pooled connections (DATABASE_POOL, the default of runserver and ASGI): one
physical connection serves tenant after tenant, and each checkout runs in its own tenant's
schema, also after a rolled-back transaction that had switched it."""

import pytest
from django.db import connection, connections

from tenants.runtime.context import tenant_context
from tests.runtime.test_connection_recycling import ORDER, serve
from tests.support.demo import DEMO_TITLES

pytestmark = [pytest.mark.django_db, pytest.mark.schema_only]


@pytest.fixture
def pooled():
    """A connection to the test database from a pool of one, as the servers configure it."""
    options = {**connection.settings_dict["OPTIONS"], "pool": {"min_size": 1, "max_size": 1}}
    settings_dict = {
        **connection.settings_dict,
        "OPTIONS": options,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
    }
    conn = type(connections["default"])(settings_dict, alias="pooled-test")
    yield conn
    conn.close()
    conn.close_pool()


def test_each_checkout_runs_in_its_own_tenants_schema(tenants, pooled):
    pids = set()
    for slug in ORDER * 2 + ["acme", "acme"]:
        pid, schema, titles = serve(pooled, tenants[slug])
        pids.add(pid)
        assert pooled.connection is None  # returned to the pool at the "request's" end
        assert schema == tenants[slug].schema_name
        assert DEMO_TITLES[slug] in titles
        assert not {t for other, t in DEMO_TITLES.items() if other != slug} & set(titles)
    assert len(pids) == 1  # one physical connection served them all


def test_a_rolled_back_switch_does_not_leak_into_the_next_checkout(tenants, pooled):
    serve(pooled, tenants["acme"])
    with tenant_context(tenants["global"]):
        pooled.set_autocommit(False)  # a transaction whose first query switched the schema
        with pooled.cursor() as cursor:
            cursor.execute("SELECT 1 FROM home_pagecontent")
        pooled.rollback()  # ... undoes the SET search_path too
        pooled.set_autocommit(True)
    pooled.close_if_unusable_or_obsolete()
    _pid, schema, titles = serve(pooled, tenants["techinnov"])
    assert schema == "techinnov" and DEMO_TITLES["techinnov"] in titles
