"""Schema mode's walls, tested against the real PostgreSQL."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.core.asgi import get_asgi_application
from django.db import DatabaseError, connection, transaction

from home.models import PageContent
from tenants.runtime.context import no_tenant, scopes_disabled, tenant_context

pytestmark = [pytest.mark.schema_only, pytest.mark.django_db]


def _current_schema_and_path(conn=connection):
    with conn.cursor() as cursor:
        cursor.execute("SELECT current_schema(), current_setting('search_path')")
        return cursor.fetchone()


def test_raw_sql_by_tenant_code_lands_in_its_own_schema(tenants):
    with tenant_context(tenants["acme"]):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_schema(), count(*) FROM home_pagecontent")
            schema, count = cursor.fetchone()
        assert schema == "acme"
        assert count == PageContent.objects.count() == 3


def test_tenant_search_path_excludes_public(tenants):
    with tenant_context(tenants["techinnov"]):
        assert _current_schema_and_path() == ("techinnov", "techinnov")
    with no_tenant():
        assert _current_schema_and_path()[0] == "public"


def test_missing_tenant_table_raises_instead_of_reading_public(tenants):
    """public.home_pagecontent exists (the default tenant's); a tenant must never fall onto it."""
    with no_tenant(), connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('public.home_pagecontent') IS NOT NULL")
        assert cursor.fetchone()[0]
    with tenant_context(tenants["global"]):
        sid = transaction.savepoint()
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE home_pagecontent CASCADE")
        missing = 'relation "home_pagecontent" does not exist'
        with pytest.raises(DatabaseError, match=missing), transaction.atomic():
            list(PageContent.objects.all())
        transaction.savepoint_rollback(sid)
        assert PageContent.objects.count() == 2  # the table is back after the rollback


def test_switching_tenants_on_one_connection_switches_schema(tenants):
    pid = None
    for slug in ["acme", "global", "acme", "techinnov", "default"]:
        with tenant_context(tenants[slug]):
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend = cursor.fetchone()[0]
            pid = pid or backend
            assert backend == pid  # one server session throughout
            expected = "public" if slug == "default" else tenants[slug].schema_name
            assert _current_schema_and_path()[0] == expected


def test_pooled_connection_never_keeps_the_previous_tenants_search_path(tenants):
    """A server session handed back by the pool must not carry the last tenant's schema."""
    from tenants.backends.postgresql.base import DatabaseWrapper

    settings_dict = {**connection.settings_dict, "CONN_MAX_AGE": 0}
    settings_dict["OPTIONS"] = {
        **settings_dict.get("OPTIONS", {}),
        "pool": {"min_size": 1, "max_size": 1},
    }
    pooled = DatabaseWrapper(settings_dict, alias="pooled-test")
    try:
        with tenant_context(tenants["acme"]):
            first = _current_schema_and_path(pooled)
            with pooled.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
        pooled.close()  # back to the pool, search_path still set on the server
        with no_tenant():
            with pooled.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                assert cursor.fetchone()[0] == pid  # the very same server session
            assert _current_schema_and_path(pooled)[0] == "public"
        pooled.close()
        with tenant_context(tenants["global"]):
            assert _current_schema_and_path(pooled)[0] == "global"
        assert first[0] == "acme"
    finally:
        pooled.close_pool()


def test_worker_threads_follow_the_context_not_connection_state(tenants):
    """Where django-tenants' connection state breaks under ASGI: sync work handed to a thread
    pool (``sync_to_async(thread_sensitive=False)``, run_in_executor) runs on that thread's own
    connection. State set with ``connection.set_tenant()`` stays behind; the context follows."""

    def titles():
        try:
            with scopes_disabled():
                return set(PageContent.objects.values_list("title", flat=True))
        finally:
            connection.close()  # this pool thread's own connection

    async def in_worker_thread():
        return await sync_to_async(titles, thread_sensitive=False)()

    acme = tenants["acme"]
    connection.set_tenant(acme)  # django-tenants' way: state on this thread's connection
    try:
        stale = asyncio.run(in_worker_thread())
    finally:
        connection.set_schema_to_public()
    assert "Acme rockets" not in stale  # the worker's connection never heard of acme

    with tenant_context(acme):  # our way: the ContextVar travels with the work
        assert "Acme rockets" in asyncio.run(in_worker_thread())


@pytest.fixture
def close_other_sessions():
    """ASGI runs sync code on threads of its own, each with its own connection; end them so
    the test database can be dropped."""
    yield
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.mark.urls("tests.support.probe_urls")
def test_concurrent_asgi_requests_for_different_tenants_stay_apart(close_other_sessions):
    hosts = {
        "acme.localhost": ("acme", "acme"),
        "global.localhost": ("global", "global"),
        "techinnov.localhost": ("techinnov", "techinnov"),
        "localhost": ("default", "public"),
    }
    application = get_asgi_application()

    async def one(host):
        """One request exactly as an ASGI server would send it."""
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/probe/schema/",
            "raw_path": b"/probe/schema/",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", host.encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        sent, requested = [], []

        async def receive():
            if not requested:
                requested.append(True)
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()  # the client never disconnects

        async def send(message):
            sent.append(message)

        await application(scope, receive, send)
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return host, json.loads(body)

    async def all_at_once():
        return await asyncio.gather(*(one(host) for _ in range(10) for host in hosts))

    results = asyncio.run(all_at_once())
    for host, body in results:
        slug, schema = hosts[host]
        assert body["tenant"] == slug
        assert body["schema"] == schema
        assert body["worker_schema"] == schema


def test_content_type_ids_agree_across_schemas(tenants):
    """Django caches ContentType ids per process, not per schema: every schema must number
    them alike or admin logs and permissions would point at the wrong model."""

    def content_types(tenant):
        with tenant_context(tenant), connection.cursor() as cursor:
            cursor.execute("SELECT id, app_label, model FROM django_content_type ORDER BY id")
            return cursor.fetchall()

    public = content_types(tenants["default"])
    assert ("home", "pagecontent") in {(app, model) for _, app, model in public}
    for slug in ["acme", "jcw-site", "techinnov", "global"]:
        assert content_types(tenants[slug]) == public, slug


def test_deleting_a_tenant_schema_user_does_not_reach_for_public_tables(tenants):
    from django.contrib.auth import get_user_model

    from tests.support.members import make_member

    user = make_member(tenants["acme"], "leaving")
    with tenant_context(tenants["acme"]):
        user.delete()  # the collector asks which tenants the user owns: none, from here
        assert not get_user_model().objects.filter(username="leaving").exists()


def test_a_tenant_with_an_invalid_schema_name_never_gets_a_cursor(tenants):
    """Schema names are checked before every SET search_path; valid ones are remembered, an
    invalid one raises every time (nothing about it is cached)."""
    from django.core.exceptions import ValidationError

    from tenants.models import Tenant

    hostile = Tenant(pk=tenants["acme"].pk, name="x", slug="x", schema_name='acme"; DROP')
    for _ in range(2):  # refused when the cursor is made, or (transaction mode) when used
        with tenant_context(hostile), pytest.raises(ValidationError):
            connection.cursor().execute("SELECT 1")
    with tenant_context(tenants["acme"]):
        assert _current_schema_and_path() == ("acme", "acme")
