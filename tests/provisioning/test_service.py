"""The provisioning service: a whole live site or nothing at all, in both modes."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from accounts.models import Membership
from accounts.services import SignUpRefused, sign_up
from tenants.models import Tenant
from tenants.provisioning.services import (
    SiteNameUnavailable,
    provision_tenant_for_user,
    provisioning_step,
    slug_unavailable,
)
from tenants.runtime.context import tenant_context
from tenants.validators import slug_for_username, username_slug_problem
from tests.support.members import PASSWORD, admin_login
from tests.support.modes import SCHEMA_MODE
from tests.support.platform import everything

pytestmark = pytest.mark.django_db

User = get_user_model()
STEPS = (["schema", "clone"] if SCHEMA_MODE else []) + ["tenant", "domain", "content", "owner"]


class InjectedFailure(Exception):
    pass


@pytest.fixture
def fail_after():
    """fail_after("domain"): the next provisioning raises right after that step's work."""
    seen = []
    armed = []

    def receiver(sender, step, **kwargs):
        seen.append(step)
        if armed and step == armed[0]:
            raise InjectedFailure(step)

    provisioning_step.connect(receiver, weak=False)

    def arm(step):
        armed[:] = [step]
        return seen

    yield arm
    provisioning_step.disconnect(receiver)


def test_provisioning_makes_a_live_site_with_an_owner(host_client):
    user = User.objects.create_user("dana", "dana@example.com", PASSWORD)  # signal provisions
    result = user.provisioned
    assert result.tenant.slug == "dana" and result.tenant.owner == user
    assert result.domain.domain == "dana.localhost" and result.domain.is_primary
    assert result.message == "dana's site is live at dana.localhost."
    response = host_client("dana.localhost").get("/")
    assert response.status_code == 200
    assert b"dana&#x27;s site is live" in response.content
    client = Client(HTTP_HOST="dana.localhost")
    assert admin_login(client, "dana").url == "/admin/"
    assert client.get("/admin/home/pagecontent/").status_code == 200


def test_owner_access_in_each_mode():
    user = User.objects.create_user("erin", "erin@example.com", PASSWORD)
    tenant = user.provisioned.tenant
    with tenant_context(tenant):
        membership = Membership.objects.select_related("user").get()
        assert membership.role == Membership.Role.OWNER
        owner = membership.user
    assert owner.username == "erin"
    assert not owner.is_staff and not owner.is_superuser
    if SCHEMA_MODE:
        # The tenant schema's own user row, with the very same password hash.
        assert owner.password == user.password
        with connection.cursor() as cursor:
            cursor.execute('SELECT count(*) FROM "erin".auth_user')
            assert cursor.fetchone()[0] == 1
    else:
        assert owner.pk == user.pk


@pytest.mark.parametrize("step", STEPS)
def test_a_failure_at_any_step_leaves_nothing(step, fail_after):
    before = everything()
    seen = fail_after(step)
    with pytest.raises(InjectedFailure):
        sign_up(username="frank", email="frank@example.com", password=PASSWORD)
    assert seen[-1] == step  # the step's work was done when it failed
    assert everything() == before
    assert slug_unavailable("frank") is None


@pytest.mark.parametrize("step", STEPS)
def test_a_failure_leaves_nothing_for_the_service_alone(step, fail_after, settings):
    settings.TENANCY_AUTO_PROVISION = False
    user = User.objects.create_user("gina", "gina@example.com", PASSWORD)
    before = everything()
    fail_after(step)
    with pytest.raises(InjectedFailure):
        provision_tenant_for_user(user)
    assert everything() == before


def test_the_next_sign_up_after_a_failure_succeeds(fail_after):
    fail_after(STEPS[-1])
    with pytest.raises(InjectedFailure):
        sign_up(username="hugo", email="hugo@example.com", password=PASSWORD)
    fail_after("never")
    result = sign_up(username="hugo", email="hugo@example.com", password=PASSWORD)
    assert result.provisioned.tenant.slug == "hugo"


def test_users_made_inside_a_tenants_site_provision_nothing(tenants):
    before = everything()["tenants"]
    with tenant_context(tenants["acme"]):
        User.objects.create_user("acme-staff", "s@example.com", PASSWORD)
    assert everything()["tenants"] == before


def test_users_made_on_the_platform_site_provision(tenants):
    with tenant_context(tenants["default"]):
        user = User.objects.create_user("ivy", "ivy@example.com", PASSWORD)
    assert user.provisioned.tenant.slug == "ivy"


def test_auto_provisioning_can_be_turned_off(settings):
    settings.TENANCY_AUTO_PROVISION = False
    user = User.objects.create_user("jack", "jack@example.com", PASSWORD)
    assert not hasattr(user, "provisioned")
    assert not Tenant.objects.filter(slug="jack").exists()
    # Sign-up still makes a site: it calls the service itself.
    result = sign_up(username="kate", email="kate@example.com", password=PASSWORD)
    assert result.provisioned.tenant.slug == "kate"


def test_superusers_provision_only_if_configured(settings):
    User.objects.create_superuser("root-user", "r@example.com", PASSWORD)
    assert not Tenant.objects.filter(slug="root-user").exists()
    settings.TENANCY_PROVISION_SUPERUSERS = True
    User.objects.create_superuser("boss", "b@example.com", PASSWORD)
    assert Tenant.objects.filter(slug="boss").exists()


def test_a_user_whose_name_cannot_be_a_site_is_not_created():
    before = everything()
    with pytest.raises(SiteNameUnavailable, match="reserved"):
        User.objects.create_user("www", "w@example.com", PASSWORD)
    assert everything() == before


@pytest.mark.parametrize(
    "username, slug",
    [("Sarah123", "sarah123"), ("john_doe", "john-doe"), ("a-b_c", "a-b-c"), ("X", "x")],
)
def test_slug_from_username(username, slug):
    assert username_slug_problem(username) is None
    assert slug_for_username(username) == slug


@pytest.mark.parametrize(
    "username, reason",
    [
        ("www", "reserved"),
        ("admin", "reserved"),
        ("Public", "reserved"),
        ("information_schema", "reserved"),
        ("acme", "reserved"),
        ("jcw_site", "reserved"),
        ("pg_catalog", "pg-"),
        ("pg-x", "pg-"),
        ("1abc", "starts with a letter"),
        ("_abc", "starts with a letter"),
        ("abc_", "end with a hyphen"),
        ("a__b", "two hyphens"),
        ("a" * 64, "at most 63"),
        ("john.doe", "only letters"),
        ("john@doe", "only letters"),
        ("\u212aelvin", "only letters"),  # KELVIN SIGN lowercases to an ASCII k
        ("\u0430cme", "only letters"),  # Cyrillic a
        ("", "Enter a username"),
    ],
)
def test_usernames_that_cannot_name_a_site(username, reason):
    assert reason in username_slug_problem(username)


def test_63_characters_is_the_limit():
    assert username_slug_problem("a" * 63) is None


def test_configured_reserved_names(settings):
    settings.TENANCY_RESERVED_SLUGS = ["Shop"]
    assert "reserved" in username_slug_problem("shop")


def test_taken_names(tenants):
    User.objects.create_user("lena", "l@example.com", PASSWORD)
    assert "taken" in slug_unavailable("lena")
    # Another spelling of the same site name is the same site name.
    with pytest.raises(SignUpRefused, match="taken"):
        sign_up(username="LENA", email="x@example.com", password=PASSWORD)


def test_provision_command(capsys, settings):
    settings.TENANCY_AUTO_PROVISION = False
    User.objects.create_user("mona", "m@example.com", PASSWORD)
    call_command("provision_tenant", user="mona", name="Mona's Bakery")
    out = capsys.readouterr().out
    assert "Mona's Bakery is live at mona.localhost." in out
    assert "http://mona.localhost/" in out
    tenant = Tenant.objects.get(slug="mona")
    assert tenant.owner.username == "mona"
    with pytest.raises(CommandError, match="taken"):
        call_command("provision_tenant", user="mona")
    with pytest.raises(CommandError, match="No platform user"):
        call_command("provision_tenant", user="nobody-here")
    with pytest.raises(CommandError, match="reserved"):
        call_command("provision_tenant", user="mona", slug="www")


@pytest.mark.schema_only
def test_an_orphan_schema_blocks_its_name_until_cleaned():
    from tenants.provisioning.schema_factory import create_tenant_schema

    create_tenant_schema("orphaned")  # a schema with no tenant row (left by something else)
    assert "taken" in slug_unavailable("orphaned")
    with pytest.raises(SignUpRefused):
        sign_up(username="orphaned", email="o@example.com", password=PASSWORD)
    call_command("clean_orphan_schemas", verbosity=0)
    assert slug_unavailable("orphaned") is None
    assert sign_up(username="orphaned", email="o@example.com", password=PASSWORD)


@pytest.mark.row_only
@pytest.mark.parametrize("command", ["prepare_tenant_schemas", "clean_orphan_schemas"])
def test_schema_commands_say_they_need_schema_mode(command):
    with pytest.raises(CommandError, match="schema mode only"):
        call_command(command)


@pytest.mark.django_db
def test_the_new_schema_name_check_uses_an_index_not_a_scan_of_every_tenant():
    """django-tenants checks a new tenant's schema name case-blind before saving it: with many
    tenants that query must be an index lookup (docs/cells-capacity.md)."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's planner: SQLite has no EXPLAIN of this kind")
    query = Tenant.objects.filter(schema_name__iexact="Some_Name").only("pk")
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # tiny table: the planner would scan
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "tenants_schema_name_upper" in plan, plan
