"""Transaction mode of the schema backend (TENANCY_TRANSACTION_POOLER): every statement carries
its tenant's search_path as a transaction-local setting, and the server session keeps none.

These run on a connection of their own, made with the setting on, against the committed demo
tenants. What they check is what a transaction pooler needs: whichever server session a
statement lands on, it runs in its own tenant's schema, and it leaves that session as it found
it. (The end-to-end proof through a real PgBouncer is the production-stack harness.)
"""

import psycopg
import pytest
from django.db import connection
from django.db.utils import load_backend
from django.test.utils import CaptureQueriesContext, override_settings

from tenants.backends.transaction_state import TenantStateRefused
from tenants.runtime.context import no_tenant, tenant_context

pytestmark = [pytest.mark.schema_only, pytest.mark.django_db]


@pytest.fixture
def pooled():
    """A schema-backend connection in transaction mode, to the test database."""
    backend = load_backend(connection.settings_dict["ENGINE"])
    with override_settings(TENANCY_TRANSACTION_POOLER=True):
        wrapper = backend.DatabaseWrapper(
            {**connection.settings_dict, "DISABLE_SERVER_SIDE_CURSORS": True}, "default"
        )
    yield wrapper
    wrapper.close()


def session_search_path(wrapper) -> str:
    """The server session's own search_path, read past the tenant-state cursor."""
    wrapper.ensure_connection()
    with psycopg.Cursor(wrapper.connection) as raw:
        raw.execute("SHOW search_path")
        return raw.fetchone()[0]


def one(wrapper, query, params=None):
    with wrapper.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchone()


def test_each_statement_runs_in_its_tenants_schema_and_leaves_the_session_alone(pooled, tenants):
    default_path = session_search_path(pooled)
    for slug in ("acme", "global", "acme"):
        with tenant_context(tenants[slug]):
            assert one(pooled, "SELECT current_schemas(false)")[0] == [tenants[slug].schema_name]
            titles = one(pooled, "SELECT array_agg(title ORDER BY id) FROM home_pagecontent")[0]
            assert titles and all(slug.split("-")[0].capitalize() in t for t in titles[:1])
        assert session_search_path(pooled) == default_path
    with no_tenant():
        assert one(pooled, "SELECT current_schemas(false)")[0] == ["public"]


def test_parameters_and_several_result_sets_still_work(pooled, tenants):
    with tenant_context(tenants["acme"]):
        assert one(pooled, "SELECT %s::int + 1, %s", [41, "100%"]) == (42, "100%")
        with pooled.cursor() as cursor:
            cursor.execute("SELECT 1; SELECT current_schemas(false)")
            assert cursor.fetchone() == (1,)  # positioned on the statement's own first result
            assert cursor.nextset()
            assert cursor.fetchone() == (["acme"],)


def test_tenants_alternating_inside_one_transaction(pooled, tenants):
    pooled.set_autocommit(False)
    try:
        for slug in ("acme", "techinnov", "acme"):
            with tenant_context(tenants[slug]):
                assert one(pooled, "SELECT current_schemas(false)")[0] == [
                    tenants[slug].schema_name
                ]
        with no_tenant():  # inside a tenant's transaction, no tenant is the platform again
            assert one(pooled, "SELECT current_schemas(false)")[0] == ["public"]
    finally:
        pooled.rollback()
        pooled.set_autocommit(True)
    assert session_search_path(pooled) != "acme"


def test_a_rolled_back_savepoint_does_not_take_the_tenant_with_it(pooled, tenants):
    pooled.set_autocommit(False)
    try:
        with tenant_context(tenants["acme"]):
            one(pooled, "SELECT 1")
            savepoint = pooled.savepoint()
            with tenant_context(tenants["global"]):
                assert one(pooled, "SELECT current_schemas(false)")[0] == ["global"]
            pooled.savepoint_rollback(savepoint)
            assert one(pooled, "SELECT current_schemas(false)")[0] == ["acme"]
    finally:
        pooled.rollback()
        pooled.set_autocommit(True)


def test_executemany_in_autocommit_writes_to_the_tenants_schema(pooled, tenants):
    with tenant_context(tenants["acme"]), pooled.cursor() as cursor:
        cursor.executemany("INSERT INTO home_pagecontent (tenant_id, title, body, ordering, "
                           "published, updated_at) VALUES (%s, %s, '', 99, false, now())",
                           [(tenants["acme"].pk, "executemany probe")])  # fmt: skip
        cursor.execute("SELECT count(*) FROM acme.home_pagecontent WHERE title = %s",
                       ["executemany probe"])  # fmt: skip
        assert cursor.fetchone() == (1,)
        cursor.execute("DELETE FROM home_pagecontent WHERE title = 'executemany probe'")
    with no_tenant():
        assert one(pooled, "SELECT to_regclass('public.home_pagecontent') IS NULL "
                   "OR NOT EXISTS (SELECT 1 FROM public.home_pagecontent "
                   "WHERE title = 'executemany probe')")[0]  # fmt: skip


def test_no_session_level_set_is_ever_sent(pooled, tenants):
    with CaptureQueriesContext(pooled) as queries:
        for slug in ("acme", "global"):
            with tenant_context(tenants[slug]):
                one(pooled, "SELECT 1")
    sent = [q["sql"] for q in queries.captured_queries]
    assert sent == ['SET LOCAL search_path = "acme"; SELECT 1',
                    'SET LOCAL search_path = "global"; SELECT 1']  # fmt: skip


def test_statements_that_cannot_run_in_a_transaction(pooled, tenants):
    with tenant_context(tenants["acme"]), pytest.raises(TenantStateRefused):
        one(pooled, "VACUUM home_pagecontent")
    with no_tenant(), pooled.cursor() as cursor:
        cursor.execute("VACUUM public.tenants_domain")  # platform: sent as it is


def test_server_side_cursors_must_be_off():
    from django.core.exceptions import ImproperlyConfigured

    backend = load_backend(connection.settings_dict["ENGINE"])
    with override_settings(TENANCY_TRANSACTION_POOLER=True), pytest.raises(ImproperlyConfigured):
        backend.DatabaseWrapper(
            {**connection.settings_dict, "DISABLE_SERVER_SIDE_CURSORS": False}, "default"
        )


def test_a_failed_statement_in_a_savepoint_can_be_rolled_back(pooled, tenants):
    """Transaction control is sent without the prefix: in a failed transaction the prefix
    itself would be refused, and ROLLBACK TO SAVEPOINT with it."""
    from django.db import DatabaseError

    pooled.set_autocommit(False)
    try:
        with tenant_context(tenants["acme"]):
            savepoint = pooled.savepoint()
            with pytest.raises(DatabaseError):
                one(pooled, "SELECT * FROM no_such_table")
            pooled.savepoint_rollback(savepoint)
            assert one(pooled, "SELECT current_schemas(false)")[0] == ["acme"]
    finally:
        pooled.rollback()
        pooled.set_autocommit(True)
