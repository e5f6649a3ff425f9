"""Row-level security (row mode on PostgreSQL): PostgreSQL itself keeps tenants apart, whatever
the SQL the application sends (tenants.rls, tenants.backends.rowsecurity).

Everything here runs as the application's role, except where a test says it uses the owner's.
"""

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection, connections, transaction
from django.db.utils import load_backend

from accounts.models import Membership
from home.models import PageContent
from tenants import postgres, rls
from tenants.operations.upgrade import Source, UpgradeError
from tenants.runtime.context import no_tenant, scopes_disabled, tenant_context
from tests.support.modes import DATABASES_WITH_OWNER, ROW_LEVEL_SECURITY
from tests.support.servers import served_database_url

pytestmark = [
    pytest.mark.skipif(not ROW_LEVEL_SECURITY, reason="row mode on PostgreSQL only"),
    pytest.mark.django_db,
]
ALL_ALL_COMMANDS = {"SELECT", "INSERT", "UPDATE", "DELETE"}
CURRENT_TENANT_ONLY = (
    "(tenant_id = (NULLIF(( SELECT current_setting('tenancy.tenant_id'::text, true) AS "
    "current_setting), ''::text))::bigint)"
)
COMMANDS = {"SELECT", "INSERT", "UPDATE", "DELETE"}
ALL_COMMANDS = {"SELECT", "INSERT", "UPDATE", "DELETE"}
CURRENT_TENANT_ONLY = (
    "(tenant_id = (NULLIF(( SELECT current_setting('tenancy.tenant_id'::text, true) AS "
    "current_setting), ''::text))::bigint)"
)
COMMANDS = {"*": ALL_COMMANDS, "r": {"SELECT"}, "a": {"INSERT"}, "w": {"UPDATE"}, "d": {"DELETE"}}


def rows(sql, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def test_every_tenant_owned_table_has_forced_row_level_security_for_all_four_commands():
    tables = rls.tenant_owned_tables()
    assert {"home_pagecontent", "home_sitesettings", "accounts_membership"} <= set(tables)
    catalog = rows(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner), "
        "array_agg(p.polcmd::text ORDER BY p.polname), "
        "array_agg(pg_get_expr(p.polqual, p.polrelid) ORDER BY p.polname), "
        "array_agg(pg_get_expr(p.polwithcheck, p.polrelid) ORDER BY p.polname) "
        "FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid "
        "WHERE c.relname = ANY(%s) AND c.relkind = 'r' AND pg_table_is_visible(c.oid) "
        "GROUP BY 1, 2, 3, 4 ORDER BY 1",
        [tables],
    )
    assert [row[0] for row in catalog] == tables
    for table, enabled, forced, owner, commands, using, checks in catalog:
        assert enabled and forced, table
        assert owner != rls.app_role(), table
        covered = set().union(*(COMMANDS[c] for c in commands if c))
        assert covered == ALL_COMMANDS, table
        # Every policy admits the transaction-local tenant's rows only, old rows and new alike.
        assert set(using) == set(checks) == {CURRENT_TENANT_ONLY}, table


def test_a_request_on_a_tenants_host_sees_only_its_rows_past_the_orm(
    settings, host_client, tenants
):
    settings.ROOT_URLCONF = "tests.support.rls_probe_urls"
    client = host_client("acme.localhost")
    acme = tenants["acme"].pk
    for probe in ("cursor", "raw", "unscoped"):
        response = client.get(f"/probe/rls/{probe}/")
        assert response.json() == {"tenants": [acme]}, probe
    # The filter really is the database's: the owner sees every tenant's pages.
    assert len({t for (t,) in owner_rows("SELECT tenant_id FROM home_pagecontent")}) >= 5


def test_an_insert_for_another_tenant_is_refused_by_postgresql(settings, host_client, tenants):
    settings.ROOT_URLCONF = "tests.support.rls_probe_urls"
    client = host_client("acme.localhost")
    refused = client.get(f"/probe/rls/insert/{tenants['global'].pk}/")
    assert refused.status_code == 403
    assert "row-level security" in refused.json()["refused"]
    assert "inserted" in client.get(f"/probe/rls/insert/{tenants['acme'].pk}/").json()


def test_an_update_cannot_move_a_row_to_another_tenant(tenants):
    with tenant_context(tenants["acme"]):
        page = PageContent.objects.first()
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            rows(
                "UPDATE home_pagecontent SET tenant_id = %s WHERE id = %s RETURNING id",
                [tenants["global"].pk, page.pk],
            )
        # Another tenant's rows are out of reach of UPDATE and DELETE alike.
        with tenant_context(tenants["global"]):
            assert rows("UPDATE home_pagecontent SET title = 'x' WHERE id = %s RETURNING id",
                        [page.pk]) == []  # fmt: skip
            assert rows("DELETE FROM home_pagecontent WHERE id = %s RETURNING id", [page.pk]) == []


def test_with_no_tenant_active_raw_sql_sees_no_tenant_rows(tenants):
    with no_tenant(), scopes_disabled():
        for table in rls.tenant_owned_tables():
            assert rows(f'SELECT count(*) FROM "{table}"') == [(0,)], table
        assert list(PageContent.objects.all()) == []
    with tenant_context(tenants["acme"]), transaction.atomic():
        assert rows("SELECT count(*) FROM home_pagecontent")[0][0] > 0
        with no_tenant():  # inside the tenant's own transaction too
            assert rows("SELECT count(*) FROM home_pagecontent") == [(0,)]


def test_the_application_role_outside_the_platform_sees_no_tenant_rows():
    """A report in psql, or any client, as the application's role: 0 rows, and no way to
    become a role that sees more."""
    with postgres.connect("default") as raw:
        for table in rls.tenant_owned_tables():
            assert raw.execute(f'SELECT count(*) FROM "{table}"').fetchone() == (0,), table
        for escape in (
            f"SET ROLE {connections['owner'].settings_dict['USER']}",
            "ALTER TABLE home_pagecontent DISABLE ROW LEVEL SECURITY",
            "ALTER TABLE home_pagecontent NO FORCE ROW LEVEL SECURITY",
            "DROP POLICY tenant_isolation ON home_pagecontent",
            "TRUNCATE home_pagecontent",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                raw.execute(escape)


def test_the_server_session_keeps_no_tenant_for_the_next_client(tenants):
    """What a transaction pooler's next client would get on the same server connection: no
    tenant, hence no rows. Every statement carries its own tenant, also within a transaction."""
    site = load_backend(connection.settings_dict["ENGINE"]).DatabaseWrapper(
        connection.settings_dict, "default"
    )  # a connection of its own, in autocommit like the site's
    try:
        with tenant_context(tenants["acme"]), site.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM home_pagecontent")
            assert cursor.fetchone()[0] > 0
        with psycopg.Cursor(site.connection) as next_client:  # past the tenant prefix
            next_client.execute("SELECT current_setting(%s, true)", [rls.SETTING])
            assert next_client.fetchone()[0] in (None, "")
            next_client.execute("SELECT count(*) FROM home_pagecontent")
            assert next_client.fetchone() == (0,)
    finally:
        site.close()


def test_the_health_check_needs_no_tenant_and_sees_a_dead_connection(tenants):
    site = load_backend(connection.settings_dict["ENGINE"]).DatabaseWrapper(
        connection.settings_dict, "default"
    )
    try:
        with tenant_context(tenants["acme"]):
            site.ensure_connection()
            assert site.is_usable()
            site.connection.close()  # the server went away
            assert not site.is_usable()
    finally:
        site.close()


def test_tenants_alternating_in_one_transaction_each_see_their_own(tenants):
    with transaction.atomic():
        for slug in ("acme", "global", "acme"):
            with tenant_context(tenants[slug]), scopes_disabled():
                seen = {t for (t,) in rows("SELECT tenant_id FROM home_pagecontent")}
                assert seen == {tenants[slug].pk}


def test_the_site_refuses_a_role_that_bypasses_the_policies():
    """Connecting the site as the owner (or a superuser) would silently switch the second wall
    off: the first connection says so instead."""
    owner_settings = {**connections["owner"].settings_dict, "DISABLE_SERVER_SIDE_CURSORS": True}
    backend = load_backend(owner_settings["ENGINE"])
    site_as_owner = backend.DatabaseWrapper(owner_settings, "default")
    with pytest.raises(ImproperlyConfigured, match="BYPASSRLS"):
        site_as_owner.ensure_connection()
    site_as_owner.close()


def test_the_upgrade_reads_a_row_mode_source_as_the_owner_only():
    with pytest.raises(UpgradeError, match="owner URL"):
        Source(served_database_url("default"))
    Source(served_database_url("owner")).close()


def owner_rows(sql):
    with postgres.connect(rls.OWNER) as raw:
        return raw.execute(sql).fetchall()


def test_deleting_a_user_takes_their_memberships_in_every_site(tenants):
    """Django's cascade sees the current tenant's memberships only; PostgreSQL's own cascade
    (tenants.rls.CascadeAcrossTenants) takes the rest."""
    user = get_user_model()(username="two-sites")
    user.provision_site = False
    with no_tenant():
        user.save()
    for slug in ("acme", "global"):
        with tenant_context(tenants[slug]):
            Membership.objects.create(user=user)
    with tenant_context(tenants["default"]), scopes_disabled():
        user.delete()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # what COMMIT would check
    for slug in ("acme", "global"):
        with tenant_context(tenants[slug]):
            assert not Membership.objects.filter(user_id=user.pk).exists()


@pytest.mark.django_db(databases=DATABASES_WITH_OWNER)
def test_migrate_puts_back_policies_a_database_migrated_with_the_setting_off_lacks():
    owner = connections[rls.OWNER]
    with owner.cursor() as cursor:
        cursor.execute(rls.drop_policy_sql("home_sitesettings"))
    assert rls.reapply_if_missing(rls.OWNER)
    assert not rls.reapply_if_missing(rls.OWNER)  # nothing left to do
    with connection.cursor() as cursor:
        assert rls.isolation_problems(cursor) == []
