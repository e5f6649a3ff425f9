"""The upgrade from row mode to schema mode, end to end, and isolation in what it produced.

A row-mode SQLite database is made the way a running site has one: the demo tenants, 100 more
with pages and members, a staff user, a member of two tenants, a group with permissions, admin
log entries and sessions. The upgrade copies it into a new PostgreSQL database; then the result
is checked row by row and over HTTP, through a real server: another tenant's host, ids and
session get nothing.
"""

import hashlib
import os
import re
import signal
import subprocess
import sys
import time

import psycopg
import pytest
from django.contrib.admin.models import DELETION
from django.db import connection

from tests.support import servers
from tests.support.postgres import database_exists, database_url, drop_database, postgres_rows
from tests.support.servers import REPO, Visitor, on_test_database, serving

pytestmark = [pytest.mark.schema_only, pytest.mark.django_db]

PASSWORD = "bench pass 123"
EXTRAS = f"""
from django.contrib.admin.models import LogEntry, CHANGE, DELETION
from django.contrib.auth.models import Group, Permission, User
from django.contrib.sessions.backends.db import SessionStore
from accounts.models import LogEntryTenant, Membership
from home.models import PageContent
from tenants.runtime.context import scopes_disabled
from tenants.models import Tenant

with scopes_disabled():
    t1, t2 = Tenant.objects.get(slug="bench-00001"), Tenant.objects.get(slug="bench-00002")
    staff = User.objects.create_user("platform-staff", "s@example.com", "{PASSWORD}",
                                     is_staff=True, is_superuser=True)
    loner = User.objects.create_user("no-site-yet", "l@example.com", "{PASSWORD}")
    both = User.objects.create_user("two-sites", "b@example.com", "{PASSWORD}")
    Membership.objects.create(tenant=t1, user=both, role="editor")
    Membership.objects.create(tenant=t2, user=both, role="owner")
    t2.owner = both
    t2.save()
    editors = Group.objects.create(name="editors")
    editors.permissions.add(Permission.objects.get(codename="change_pagecontent"))
    both.groups.add(editors)
    both.user_permissions.add(Permission.objects.get(codename="view_membership"))
    page = PageContent.objects.filter(tenant=t1).first()
    member = User.objects.get(username="bench-00001-member1")
    LogEntry.objects.log_actions(member.pk, [page], CHANGE, change_message="edited")
    # An entry marked with bench-00002's admin, about a page since deleted, by a member of two
    # sites: only the mark says where it belongs.
    gone = PageContent.objects.filter(tenant=t2).first()
    [entry] = LogEntry.objects.log_actions(both.pk, [gone], DELETION, change_message="")
    LogEntryTenant.objects.create(tenant=t2, entry=entry)
    gone.delete()
    SessionStore().create()
print("extras done")
"""


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def manage(*args, mode="schema", database_url, check=True, **kwargs):
    # The source is made with exactly the users and sites listed here: no self-service site
    # for each user the shell creates.
    env = {
        "TENANCY_MODE": mode,
        "DATABASE_URL": database_url,
        "TENANCY_AUTO_PROVISION": "false",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    return servers.manage(*args, env=env, check=check, **kwargs)


@pytest.fixture(scope="module")
def source(tmp_path_factory, django_db_setup):
    """The row-mode SQLite database of a running site (demo + 100 tenants + extras)."""
    path = tmp_path_factory.mktemp("rowmode") / "site.sqlite3"
    url = f"sqlite:///{path}"
    manage("migrate", "-v0", mode="row", database_url=url)
    manage("seed_demo_tenants", mode="row", database_url=url)
    manage(
        "create_bench_tenants", "100", "--pages", "20", "--members", "3", "--password", PASSWORD,
        mode="row", database_url=url,
    )  # fmt: skip
    manage("shell", "-c", EXTRAS, mode="row", database_url=url)
    return path


@pytest.fixture(scope="module")
def upgraded(source):
    """The upgrade run once into a new database; yields (url, the command's output)."""
    url = database_url(f"{connection.settings_dict['NAME']}_upgrade")
    drop_database(url)
    before = sha256(source)
    dry = manage(
        "upgrade_to_schema_mode", "--source", f"sqlite:///{source}", "--dry-run", database_url=url
    )
    assert "Dry run: nothing was written" in dry.stdout
    assert "sessions are not copied" in dry.stdout
    assert not database_exists(url)  # a dry run creates nothing
    done = manage("upgrade_to_schema_mode", "--source", f"sqlite:///{source}", database_url=url)
    assert sha256(source) == before  # the source is never modified
    yield url, done.stdout
    drop_database(url)


def source_rows(path, sql):
    import sqlite3

    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


# --- What was written -----------------------------------------------------------------------------


def test_upgrade_verifies_every_schema(upgraded):
    url, output = upgraded
    assert "Upgraded and verified: 105 schemas" in output
    assert "row counts and checksums equal to the source" in output
    schemas = {r[0] for r in postgres_rows(url, "SELECT schema_name FROM public.tenancy_upgrade")}
    assert len(schemas) == 105 and {"public", "acme", "bench_00100", "jcw_site"} <= schemas


def test_each_tenant_has_its_own_rows_with_their_ids(upgraded, source):
    url, _ = upgraded
    src_pages = source_rows(
        source,
        "SELECT p.id, p.title FROM home_pagecontent p JOIN tenants_tenant t "
        "ON t.id = p.tenant_id WHERE t.slug = 'bench-00042' ORDER BY p.id",
    )
    assert len(src_pages) == 20
    assert (
        postgres_rows(url, "SELECT id, title FROM bench_00042.home_pagecontent ORDER BY id")
        == src_pages
    )
    tenants = dict(postgres_rows(url, "SELECT slug, schema_name FROM public.tenants_tenant"))
    assert tenants["default"] == "public" and tenants["jcw-site"] == "jcw_site"
    public_pages = {t for (t,) in postgres_rows(url, "SELECT title FROM public.home_pagecontent")}
    assert public_pages == {"One codebase, many sites", "Start your site"}


def test_users_go_where_they_belong(upgraded, source):
    url, _ = upgraded
    src = dict(source_rows(source, "SELECT username, id FROM auth_user"))
    public = dict(postgres_rows(url, "SELECT username, id FROM public.auth_user"))
    # Platform users: staff, tenant owners, accounts without a site.
    assert {"platform-staff", "no-site-yet", "two-sites"} <= set(public)
    assert not any(name.startswith("bench-") for name in public)  # members stay on their site
    b1 = dict(postgres_rows(url, "SELECT username, id FROM bench_00001.auth_user"))
    assert set(b1) == {
        "bench-00001-member1",
        "bench-00001-member2",
        "bench-00001-member3",
        "two-sites",
    }
    assert all(b1[name] == src[name] for name in b1)  # ids kept
    b2 = dict(postgres_rows(url, "SELECT username, id FROM bench_00002.auth_user"))
    assert "two-sites" in b2 and "bench-00001-member1" not in b2
    memberships = postgres_rows(
        url,
        "SELECT u.username, m.role FROM bench_00002.accounts_membership m "
        "JOIN bench_00002.auth_user u ON u.id = m.user_id ORDER BY 1",
    )
    assert ("two-sites", "owner") in memberships and len(memberships) == 4


def test_sequences_are_past_the_highest_id(upgraded):
    url, _ = upgraded
    for schema in ("public", "bench_00007"):
        highest = postgres_rows(url, f"SELECT max(id) FROM {schema}.home_pagecontent")[0][0]
        new = postgres_rows(
            url,
            f"INSERT INTO {schema}.home_pagecontent (title, body, ordering, published, "
            f"updated_at, tenant_id) SELECT 'new', '', 0, true, now(), tenant_id FROM "
            f"{schema}.home_pagecontent LIMIT 1 RETURNING id",
        )[0][0]
        assert new > highest
        postgres_rows(url, f"DELETE FROM {schema}.home_pagecontent WHERE id = %s", [new])


def test_content_types_and_permissions_are_mapped(upgraded):
    url, _ = upgraded
    public_cts = postgres_rows(
        url, "SELECT id, app_label, model FROM public.django_content_type ORDER BY id"
    )
    assert (
        postgres_rows(
            url, "SELECT id, app_label, model FROM bench_00002.django_content_type ORDER BY id"
        )
        == public_cts
    )
    perms = postgres_rows(
        url,
        "SELECT p.codename FROM bench_00002.auth_user_user_permissions up "
        "JOIN bench_00002.auth_permission p ON p.id = up.permission_id",
    )
    assert perms == [("view_membership",)]
    group_perms = postgres_rows(
        url,
        "SELECT g.name, p.codename FROM bench_00001.auth_group_permissions gp "
        "JOIN bench_00001.auth_group g ON g.id = gp.group_id "
        "JOIN bench_00001.auth_permission p ON p.id = gp.permission_id",
    )
    assert group_perms == [("editors", "change_pagecontent")]
    log = postgres_rows(
        url,
        "SELECT ct.app_label, ct.model, l.change_message FROM bench_00001.django_admin_log l "
        "JOIN bench_00001.django_content_type ct ON ct.id = l.content_type_id",
    )
    assert len(log) == 1 and log[0][:2] == ("home", "pagecontent")
    marked = postgres_rows(url, "SELECT action_flag FROM bench_00002.django_admin_log")
    assert marked == [(DELETION,)]  # marked with bench-00002's admin: there, not in public
    assert postgres_rows(url, "SELECT count(*) FROM bench_00002.accounts_logentrytenant") == [(1,)]
    assert postgres_rows(url, "SELECT count(*) FROM public.django_session") == [(0,)]


def test_rerun_writes_nothing_and_verifies_again(upgraded, source):
    url, _ = upgraded
    again = manage("upgrade_to_schema_mode", "--source", f"sqlite:///{source}", database_url=url)
    assert "Upgraded and verified: 105 schemas" in again.stdout
    assert "(105 done before)" in again.stdout


def test_a_changed_target_fails_verification_loudly(upgraded, source):
    url, _ = upgraded
    first = "(SELECT min(id) FROM bench_00009.home_pagecontent)"
    postgres_rows(
        url, f"UPDATE bench_00009.home_pagecontent SET title = 'tampered' WHERE id = {first}"
    )
    try:
        done = manage(
            "upgrade_to_schema_mode", "--source", f"sqlite:///{source}", database_url=url,
            check=False,
        )  # fmt: skip
        assert done.returncode == 1
        assert "VERIFICATION FAILED" in done.stdout
        assert re.search(r"bench_00009\s+home_pagecontent\s+20\s+20\s+checksum", done.stdout)
        assert "1 tables differ from the source" in done.stderr
    finally:
        original = source_rows(
            source,
            "SELECT title FROM home_pagecontent WHERE id = (SELECT min(p.id) FROM "
            "home_pagecontent p JOIN tenants_tenant t ON t.id = p.tenant_id "
            "WHERE t.slug = 'bench-00009')",
        )[0][0]
        postgres_rows(
            url,
            "UPDATE bench_00009.home_pagecontent SET title = %s WHERE title = 'tampered'",
            [original],
        )


def test_bad_sources_are_clear_errors(tmp_path):
    url = database_url(f"{connection.settings_dict['NAME']}_upgrade_bad")
    missing = manage(
        "upgrade_to_schema_mode", "--source", f"sqlite:///{tmp_path}/nope.sqlite3",
        database_url=url, check=False,
    )  # fmt: skip
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    unreachable = manage(
        "upgrade_to_schema_mode", "--source", "postgres://postgres@127.0.0.1:1/none",
        "--dry-run", database_url=url, check=False,
    )  # fmt: skip
    assert unreachable.returncode == 1 and "Cannot reach the source database" in unreachable.stderr
    row_mode = manage(
        "upgrade_to_schema_mode", "--source", "sqlite:///x", mode="row", database_url=url,
        check=False,
    )  # fmt: skip
    assert row_mode.returncode == 1 and "schema mode" in row_mode.stderr
    assert not database_exists(url)


def test_upgrade_from_a_postgresql_row_mode_source():
    base = connection.settings_dict["NAME"]
    source, target = database_url(f"{base}_rowsource"), database_url(f"{base}_upgrade_pg")
    for url in (source, target):
        drop_database(url)
    try:
        manage("ensure_database", mode="row", database_url=source)
        manage("migrate", "-v0", mode="row", database_url=source)
        manage("seed_demo_tenants", mode="row", database_url=source)
        manage(
            "create_bench_tenants", "5", "--pages", "4", "--members", "2",
            mode="row", database_url=source,
        )  # fmt: skip
        snapshot = "SELECT id, title, tenant_id, updated_at FROM home_pagecontent ORDER BY id"
        before = postgres_rows(source, snapshot)
        done = manage("upgrade_to_schema_mode", "--source", source, database_url=target)
        assert "Upgraded and verified: 10 schemas" in done.stdout
        assert postgres_rows(source, snapshot) == before
        assert postgres_rows(
            source, "SELECT count(*) FROM pg_namespace WHERE nspname = 'acme'"
        ) == [(0,)]
        pages = postgres_rows(target, "SELECT title FROM bench_00003.home_pagecontent ORDER BY id")
        assert [t for (t,) in pages] == [f"Bench tenant 00003: page {n}" for n in range(1, 5)]
    finally:
        for url in (source, target):
            drop_database(url)


# --- Interrupted and resumed ----------------------------------------------------------------------


def test_interrupted_upgrade_resumes(source):
    """A run stopped with Ctrl-C (SIGINT) while writing a schema keeps the schemas it finished
    whole and that one not at all; the same command then finishes and verifies."""
    url = database_url(f"{connection.settings_dict['NAME']}_upgrade_resume")
    drop_database(url)
    manage("ensure_database", database_url=url)
    manage("migrate_schemas", "--shared", "-v0", database_url=url)
    postgres_rows(
        url,
        "CREATE TABLE public.tenancy_upgrade (schema_name text PRIMARY KEY, tenant_slug text, "
        "source text NOT NULL, rows integer NOT NULL, finished_at timestamptz NOT NULL "
        "DEFAULT now())",
    )
    try:
        blocker = psycopg.connect(url)  # holds bench_00050's marker row: that write waits
        blocker.execute(
            "INSERT INTO public.tenancy_upgrade (schema_name, source, rows) "
            "VALUES ('bench_00050', 'test', 0)"
        )
        env = {**os.environ, "TENANCY_MODE": "schema", "DATABASE_URL": url}
        process = subprocess.Popen(
            [sys.executable, "manage.py", "upgrade_to_schema_mode", "--source", f"sqlite:///{source}"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            waiting = postgres_rows(
                url,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' "
                'AND query LIKE \'INSERT INTO "public"."tenancy_upgrade"%%\'',
            )[0][0]
            if waiting or process.poll() is not None:
                break
            time.sleep(0.1)
        assert waiting, process.communicate()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        blocker.rollback()
        blocker.close()
        assert process.returncode == 130, out + err
        assert "Interrupted" in err and "rerun the same command" in err
        done = {r[0] for r in postgres_rows(url, "SELECT schema_name FROM public.tenancy_upgrade")}
        assert {"public", "acme", "bench_00001"} <= done and "bench_00050" not in done
        assert postgres_rows(
            url, "SELECT count(*) FROM pg_namespace WHERE nspname = 'bench_00050'"
        ) == [(0,)]
        resumed = manage(
            "upgrade_to_schema_mode", "--source", f"sqlite:///{source}", database_url=url
        )
        assert f"({len(done)} done before)" in resumed.stdout
        assert "Upgraded and verified: 105 schemas" in resumed.stdout
    finally:
        drop_database(url)


# --- Isolation in the upgraded site, over HTTP -------------------------------------------------


def serving_upgraded(url):
    return serving(env=on_test_database(TENANCY_MODE="schema", DATABASE_URL=url))


def test_isolation_over_http_in_the_upgraded_site(upgraded):
    url, _ = upgraded
    page_b2 = postgres_rows(url, "SELECT min(id) FROM bench_00002.home_pagecontent")[0][0]
    page_b1 = postgres_rows(url, "SELECT min(id) FROM bench_00001.home_pagecontent")[0][0]
    with serving_upgraded(url) as server:
        anyone = Visitor(server)
        # Each host serves its own tenant's pages.
        status, _, body = anyone.request("bench-00001.localhost", "/")
        assert status == 200 and b"Bench tenant 00001: page 1" in body
        assert b"Bench tenant 00002" not in body
        status, _, body = anyone.request("acme.localhost", "/")
        assert b"Acme rockets" in body and b"Bench tenant" not in body
        # Another tenant's page id on this host: not found (ids were kept from the source).
        assert anyone.request("bench-00001.localhost", f"/pages/{page_b1}/").status == 200
        assert anyone.request("bench-00001.localhost", f"/pages/{page_b2}/").status == 404
        # A member signs in on their own site only, with the password they had.
        member = Visitor(server)
        assert member.login("bench-00001.localhost", "bench-00001-member1", PASSWORD)
        assert member.request("bench-00001.localhost", "/admin/").status == 200
        assert not Visitor(server).login("bench-00002.localhost", "bench-00001-member1", PASSWORD)
        # ...and not on the platform site: the member is no platform user.
        assert not Visitor(server).login("localhost", "bench-00001-member1", PASSWORD)
        # The signed-in session cookie carried to another tenant's host is no session there.
        stolen = member.cookies["bench-00001.localhost"]["sessionid"]
        member.cookies["bench-00002.localhost"] = {"sessionid": stolen}
        status, headers, _ = member.request("bench-00002.localhost", "/admin/")
        assert status == 302 and "/admin/login/" in headers["Location"]
        status, _, body = member.request("bench-00001.localhost", "/admin/home/pagecontent/")
        assert status == 200 and b"Bench tenant 00001: page 1" in body
        assert b"Bench tenant 00002" not in body
        # A member of two sites signs in on both; the platform's staff on the platform site.
        assert Visitor(server).login("bench-00001.localhost", "two-sites", PASSWORD)
        assert Visitor(server).login("bench-00002.localhost", "two-sites", PASSWORD)
        assert Visitor(server).login("localhost", "platform-staff", PASSWORD)
        assert not Visitor(server).login("bench-00001.localhost", "platform-staff", PASSWORD)
