"""Operator commands: manage.py tenants ... and manage.py domains ..., in both modes."""

import io
import json
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from accounts.models import Membership
from home.models import PageContent
from tenants.models import Domain, Tenant
from tenants.runtime.context import no_tenant, scopes_disabled, tenant_context
from tests.support.modes import DATABASES_WITH_OWNER, SCHEMA_MODE
from tests.support.platform import schema_exists

pytestmark = pytest.mark.django_db


def run(*args):
    """call_command with string arguments, as typed; returns what it printed."""
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


# --- create --------------------------------------------------------------------------------------


def test_create_with_default_domain(host_client):
    output = run("tenants", "create", "--name", "Shop One", "--slug", "shop-one")
    tenant = Tenant.objects.get(slug="shop-one")
    assert "shop-one.localhost" in output
    assert tenant.primary_domain == "shop-one.localhost"
    if SCHEMA_MODE:
        assert tenant.schema_name == "shop_one" and schema_exists("shop_one")
    assert host_client("shop-one.localhost").get("/").context["request"].tenant == tenant


def test_create_with_owner_makes_a_member_who_can_sign_in(host_client):
    User = get_user_model()
    run(
        "tenants", "create", "--name", "Owned", "--slug", "owned", "--domain", "Owned.Example.",
        "--owner", "olga", "--owner-email", "olga@example.com",
    )  # fmt: skip
    tenant = Tenant.objects.get(slug="owned")
    assert tenant.primary_domain == "owned.example"  # normalised
    with no_tenant():
        owner = User.objects.get(username="olga")
    assert tenant.owner == owner
    assert list(Tenant.objects.filter(owner=owner)) == [tenant]  # no self-service site besides
    with tenant_context(tenant):
        membership = Membership.objects.get()
        assert membership.user.username == "olga"
        assert membership.role == Membership.Role.OWNER
        local = User.objects.get(username="olga")
        local.set_password("pw for olga 123")
        local.save()
    client = host_client("owned.example")
    client.post("/admin/login/", {"username": "olga", "password": "pw for olga 123"})
    assert client.get("/admin/").status_code == 200


def test_create_with_owner_grants_access_once():
    """``tenants create --owner`` used to grant the owner's access twice (the provisioning
    service, then an operator helper with a different idea of which fields to copy)."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        run(
            "tenants", "create", "--name", "Once", "--slug", "once",
            "--owner", "oona", "--owner-email", "oona@example.com",
        )  # fmt: skip
    membership_writes = [
        q["sql"]
        for q in queries.captured_queries
        if 'INSERT INTO "accounts_membership"' in q["sql"]
        or 'UPDATE "accounts_membership"' in q["sql"]
    ]
    assert len(membership_writes) == 1, membership_writes
    tenant = Tenant.objects.get(slug="once")
    with tenant_context(tenant):
        assert Membership.objects.get().role == Membership.Role.OWNER
        assert get_user_model().objects.filter(username="oona").count() == 1


def test_granting_owner_access_again_changes_nothing_but_the_role(tenants):
    from tenants.provisioning.services import grant_owner_access

    User = get_user_model()
    with no_tenant():
        user = User(username="twice", email="twice@example.com")
        user.provision_site = False  # just an account: the test grants access itself
        user.set_password("pw for twice 123")
        user.save()
    acme = tenants["acme"]
    grant_owner_access(acme, user)
    with tenant_context(acme):
        Membership.objects.filter(user__username="twice").update(role=Membership.Role.EDITOR)
    grant_owner_access(acme, user)
    with tenant_context(acme):
        memberships = list(Membership.objects.filter(user__username="twice"))
        assert [m.role for m in memberships] == [Membership.Role.OWNER]
        assert User.objects.filter(username="twice").count() == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--slug", "Bad Slug"], "lowercase"),
        (["--slug", "acme"], "acme.* taken"),
        (["--slug", "newshop", "--domain", "acme.localhost"], "already serves another site"),
        (["--slug", "newshop", "--domain", "not a host"], "domain"),
        (["--slug", "newshop", "--owner", "nobody-here"], "No user 'nobody-here'"),
    ],
)
def test_create_refuses_bad_input_and_leaves_nothing(args, message):
    before = set(Tenant.objects.values_list("slug", flat=True))
    with pytest.raises(CommandError, match=message):
        run("tenants", "create", "--name", "New Shop", *args)
    assert set(Tenant.objects.values_list("slug", flat=True)) == before
    if SCHEMA_MODE:
        assert not schema_exists("newshop")


# --- list / show ---------------------------------------------------------------------------------


def test_list_as_table_and_json():
    table = run("tenants", "list")
    for slug in ["default", "acme", "jcw-site", "techinnov", "global"]:
        assert slug in table
    rows = json.loads(run("tenants", "list", "--json"))
    by_slug = {r["slug"]: r for r in rows}
    assert by_slug["jcw-site"]["primary_domain"] == "jcwtradehub.com"
    assert by_slug["default"]["default"] is True
    assert by_slug["acme"]["schema"] == ("acme" if SCHEMA_MODE else None)


def test_list_filters(tenants):
    run("tenants", "deactivate", "global")
    inactive = json.loads(run("tenants", "list", "--inactive", "--json"))
    assert [r["slug"] for r in inactive] == ["global"]
    found = json.loads(run("tenants", "list", "--search", "jcwtrade", "--json"))
    assert [r["slug"] for r in found] == ["jcw-site"]


def test_show_counts_only_that_tenants_rows(tenants):
    info = json.loads(run("tenants", "show", "jcwtradehub.com", "--json"))
    assert info["slug"] == "jcw-site"
    assert info["rows"]["pages (home.PageContent)"] == 3
    if SCHEMA_MODE:
        assert info["schema_state"] == "up to date"
    assert "Acme" not in json.dumps(info)


def test_unknown_tenant_is_a_clear_error():
    with pytest.raises(CommandError, match="No tenant 'nope'"):
        run("tenants", "show", "nope")


# --- deactivate / reactivate ---------------------------------------------------------------------


def test_deactivate_and_reactivate(host_client):
    assert "deactivated" in run("tenants", "deactivate", "acme")
    assert host_client("acme.localhost").get("/").status_code == 403
    assert "already inactive" in run("tenants", "deactivate", "acme")
    assert "reactivated" in run("tenants", "reactivate", "acme")
    assert host_client("acme.localhost").get("/").status_code == 200


def test_default_tenant_stays_active():
    with pytest.raises(CommandError, match="platform's own site"):
        run("tenants", "deactivate", "default")


# --- rename --------------------------------------------------------------------------------------


def test_rename_moves_schema_and_base_domain(host_client):
    output = run("tenants", "rename", "techinnov", "tech-innovations")
    tenant = Tenant.objects.get(slug="tech-innovations")
    assert tenant.primary_domain == "tech-innovations.localhost"
    assert "techinnov.localhost -> tech-innovations.localhost" in output
    if SCHEMA_MODE:
        assert tenant.schema_name == "tech_innovations"
        assert schema_exists("tech_innovations") and not schema_exists("techinnov")
    response = host_client("tech-innovations.localhost").get("/")
    assert b"Tech Innovations lab" in response.content  # the data came along
    assert response.context["request"].tenant == tenant
    old = host_client("techinnov.localhost").get("/")
    assert old.context["request"].tenant.slug == "default"  # the old host is unknown now


def test_rename_keeps_custom_domains():
    run("tenants", "rename", "jcw-site", "jcw-hub")
    assert Tenant.objects.get(slug="jcw-hub").primary_domain == "jcwtradehub.com"


@pytest.mark.parametrize(
    "tenant, new, message",
    [
        ("acme", "global", "already has the slug"),
        ("acme", "Not Valid", "lowercase"),
        ("acme", "admin", "reserved"),
        ("default", "platform", "TENANCY_DEFAULT_TENANT"),
    ],
)
def test_rename_refusals(tenant, new, message):
    with pytest.raises(CommandError, match=message):
        run("tenants", "rename", tenant, new)
    assert Tenant.objects.filter(slug=tenant).exists()
    if SCHEMA_MODE and tenant == "acme":
        assert schema_exists("acme")


# --- delete --------------------------------------------------------------------------------------


def test_delete_needs_confirmation_without_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    extra = ["--drop-schema"] if SCHEMA_MODE else []
    with pytest.raises(CommandError, match="without --yes"):
        run("tenants", "delete", "global", *extra)
    assert Tenant.objects.filter(slug="global").exists()


@pytest.mark.schema_only
def test_schema_mode_delete_says_what_happens_to_the_schema():
    with pytest.raises(CommandError, match="--drop-schema .* or --keep-schema"):
        run("tenants", "delete", "global", "--yes")
    assert Tenant.objects.filter(slug="global").exists() and schema_exists("global")


@pytest.mark.schema_only
def test_schema_mode_delete_drop_schema(host_client):
    output = run("tenants", "delete", "global", "--yes", "--drop-schema")
    assert "dropped schema global" in output
    assert not Tenant.objects.filter(slug="global").exists()
    assert not Domain.objects.filter(domain="global.localhost").exists()
    assert not schema_exists("global")
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # what COMMIT would check
    assert host_client("global.localhost").get("/").context["request"].tenant.slug == "default"


@pytest.mark.schema_only
def test_schema_mode_delete_keep_schema_archives_the_data(tenants):
    output = run("tenants", "delete", "global", "--yes", "--keep-schema")
    assert not Tenant.objects.filter(slug="global").exists()
    assert not schema_exists("global")  # the name is free for a new tenant
    archive = output.split("kept its data in schema ")[1].split()[0]
    assert archive.startswith("_deleted_global_")
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the links to tenants_tenant are cut
        cursor.execute(f'SELECT count(*) FROM "{archive}".home_pagecontent')
        assert cursor.fetchone()[0] == 2
    run("tenants", "create", "--name", "Global again", "--slug", "global2")  # still works


@pytest.mark.row_only
def test_row_mode_delete_takes_the_tenants_rows(tenants):
    run("tenants", "delete", "global", "--yes")
    # Each tenant's own context sees its rows, also with row-level security on.
    with tenant_context(tenants["global"]), scopes_disabled():
        assert not PageContent.objects.filter(tenant_id=tenants["global"].pk).exists()
    with tenant_context(tenants["acme"]), scopes_disabled():
        assert PageContent.objects.filter(tenant_id=tenants["acme"].pk).count() == 3


def test_default_tenant_cannot_be_deleted():
    with pytest.raises(CommandError, match="cannot go"):
        run("tenants", "delete", "default", "--yes", *(["--keep-schema"] if SCHEMA_MODE else []))


# --- domains -------------------------------------------------------------------------------------


def test_domains_add_normalises_and_serves(host_client):
    output = run("domains", "add", "acme", "Shop.ACME.Example.")
    assert "shop.acme.example is now a domain of acme" in output
    response = host_client("shop.acme.example").get("/")
    assert response.context["request"].tenant.slug == "acme"
    assert Tenant.objects.get(slug="acme").primary_domain == "acme.localhost"


def test_domains_refuse_a_domain_another_tenant_has():
    with pytest.raises(
        CommandError, match=r"jcwtradehub\.com belongs to another tenant \(jcw-site\)"
    ):  # noqa: E501
        run("domains", "add", "acme", "JCWTRADEHUB.com")
    assert Domain.objects.get(domain="jcwtradehub.com").tenant.slug == "jcw-site"


def test_domains_set_primary_and_remove(tenants):
    run("domains", "add", "acme", "www.acme.example", "--primary")
    assert Tenant.objects.get(slug="acme").primary_domain == "www.acme.example"
    assert Domain.objects.filter(tenant=tenants["acme"], is_primary=True).count() == 1
    with pytest.raises(CommandError, match="primary domain; make another one primary first"):
        run("domains", "remove", "www.acme.example")
    run("domains", "set-primary", "acme.localhost")
    run("domains", "remove", "www.acme.example")
    assert list(Domain.objects.filter(tenant=tenants["acme"]).values_list("domain", flat=True)) == [
        "acme.localhost"
    ]
    with pytest.raises(CommandError, match="only domain"):
        run("domains", "remove", "acme.localhost")


def test_domains_list_json():
    rows = json.loads(run("domains", "list", "acme", "--json"))
    assert rows == [{"domain": "acme.localhost", "tenant": "acme", "primary": True}]


def test_domains_bad_input():
    with pytest.raises(CommandError, match="not a valid host name"):
        run("domains", "remove", "bad host")
    with pytest.raises(CommandError, match="No tenant has the domain nowhere.example"):
        run("domains", "set-primary", "nowhere.example")


# --- run a command for tenants -------------------------------------------------------------------


def test_run_for_one_tenant_sees_only_its_data(capsys):
    run("tenants", "run", "--tenant", "acme", "--", "dumpdata", "home.pagecontent")
    out = capsys.readouterr().out
    assert "Acme rockets" in out
    assert "Global Services" not in out and "JCW" not in out


def test_run_for_all_tenants(capsys):
    run("tenants", "run", "--all", "--skip-default", "dumpdata", "home.pagecontent")
    out = capsys.readouterr().out
    for title in ["Acme rockets", "JCW market watch", "Tech Innovations lab", "Global logistics"]:
        assert out.count(f'"title": "{title}"') == 1
    assert "One codebase, many sites" not in out  # the default tenant was skipped


def test_run_reports_failures_and_keeps_going_when_asked(capsys):
    with pytest.raises(CommandError, match="failed for acme, default, global"):
        run("tenants", "run", "--all", "--keep-going", "dumpdata", "nosuchapp")
    with pytest.raises(CommandError, match="stopped there"):
        run("tenants", "run", "--all", "dumpdata", "nosuchapp")
    with pytest.raises(CommandError, match="Unknown command"):
        run("tenants", "run", "--all", "no_such_command")


# --- migrate -------------------------------------------------------------------------------------


@pytest.mark.row_only
@pytest.mark.django_db(databases=DATABASES_WITH_OWNER)  # migrations run as the owner
def test_migrate_in_row_mode_is_plain_migrate():
    assert "Row mode" in run("tenants", "migrate")
