"""Schema mode: fast tenant schemas are exactly what running every migration gives."""

from io import StringIO

import pytest
from django.db import connection, transaction

from tenants.models import Tenant
from tenants.provisioning import schema_factory, schema_pool, schema_template
from tests.support.catalog import describe_schema
from tests.support.platform import schema_exists

pytestmark = [pytest.mark.django_db, pytest.mark.schema_only]


@pytest.fixture
def migrated_reference():
    """A schema made by django-tenants' own default path: CREATE SCHEMA + migrate_schemas."""
    Tenant(schema_name="ref_migrated").create_schema(check_if_exists=False, verbosity=0)
    return describe_schema("ref_migrated")


@pytest.fixture
def no_pool(settings):
    settings.TENANCY_SCHEMA_POOL_SIZE = 0


@pytest.fixture
def empty_pool():
    """No spares, whatever earlier tests or server processes committed to the shared test
    database. Dropped in the test's transaction: they are back after the test."""
    for name in schema_pool.spare_names():
        schema_factory.drop_schema(name)
    assert schema_pool.spare_names() == []


def test_reference_is_a_real_tenant_schema(migrated_reference):
    tables = {name for name, _type in migrated_reference["tables"]}
    assert {"home_pagecontent", "accounts_membership", "auth_user", "django_migrations"} <= tables
    assert migrated_reference["data"]["django_migrations"]
    assert migrated_reference["data"]["auth_permission"]


def test_script_schema_equals_migrated_schema(migrated_reference, no_pool):
    assert schema_factory.create_tenant_schema("fast_script") == "script"
    assert describe_schema("fast_script") == migrated_reference


def test_spare_schema_equals_migrated_schema(migrated_reference, settings, empty_pool):
    settings.TENANCY_SCHEMA_POOL_SIZE = 1
    assert schema_pool.fill(1) == 1
    assert schema_factory.create_tenant_schema("fast_spare") == "spare"
    assert describe_schema("fast_spare") == migrated_reference


def test_a_spare_used_by_a_rolled_back_sign_up_is_claimed_as_new(
    migrated_reference, settings, empty_pool
):
    """Rows go with the rollback, sequences do not (nextval is never undone): the spare comes
    back with its sequences moved on, and the next claim must set them back."""
    settings.TENANCY_SCHEMA_POOL_SIZE = 1
    schema_pool.fill(1)
    [spare] = schema_pool.spare_names()
    with pytest.raises(RuntimeError), transaction.atomic():
        assert schema_factory.create_tenant_schema("fast_used") == "spare"
        with connection.cursor() as cursor:
            cursor.execute(
                'INSERT INTO "fast_used".auth_user (username, password, first_name, last_name, '
                "email, is_superuser, is_staff, is_active, date_joined) "
                "VALUES ('owner', '', '', '', '', false, false, true, now())"
            )
            cursor.execute(
                "INSERT INTO \"fast_used\".django_content_type (app_label, model) VALUES ('x', 'y')"
            )
        raise RuntimeError("the sign-up fails after writing to its schema")
    assert schema_pool.spare_names() == [spare]
    used = describe_schema(spare)
    assert used["data"] == migrated_reference["data"]
    # Its sequences have moved on, as PostgreSQL's do.
    assert used["sequence_values"] != migrated_reference["sequence_values"]
    assert schema_factory.create_tenant_schema("fast_reused") == "spare"
    assert describe_schema("fast_reused") == migrated_reference


def test_comparison_notices_a_difference(migrated_reference, no_pool):
    """The comparison can fail: one missing index is enough."""
    schema_factory.create_tenant_schema("fast_changed")
    with connection.cursor() as cursor:
        cursor.execute('DROP INDEX "fast_changed"."auth_user_username_6821ab7c_like"')
    assert describe_schema("fast_changed")["indexes"] != migrated_reference["indexes"]


def test_no_constraint_ties_a_tenant_schema_to_public(no_pool):
    """Tenant rows reference tenants_tenant without a database constraint: a constraint would
    put a trigger per schema on public.tenants_tenant and lock it for every new schema."""
    schema_factory.create_tenant_schema("fast_fk")
    constraints = describe_schema("fast_fk")["constraints"]
    foreign_keys = [
        (table, ref) for table, _n, kind, *_r, ref, _u, _d, _m, _i in constraints if kind == "f"
    ]
    assert ("accounts_membership", "auth_user") in foreign_keys  # local ones are still there
    assert not [fk for fk in foreign_keys if fk[1] == "tenants_tenant"]


def test_sequences_carry_on_where_migrations_left_them(no_pool):
    schema_factory.create_tenant_schema("fast_seq")
    with connection.cursor() as cursor:
        cursor.execute('SELECT max(id) FROM "fast_seq".django_content_type')
        highest = cursor.fetchone()[0]
        cursor.execute(
            'INSERT INTO "fast_seq".django_content_type (app_label, model) '
            "VALUES ('x', 'y') RETURNING id"
        )
        assert cursor.fetchone()[0] == highest + 1


def test_rolled_back_schema_leaves_nothing(no_pool):
    with pytest.raises(RuntimeError), transaction.atomic():
        schema_factory.create_tenant_schema("fast_rollback")
        assert schema_exists("fast_rollback")
        raise RuntimeError("boom")
    assert not schema_exists("fast_rollback")


def test_rolled_back_claim_puts_the_spare_back(settings):
    settings.TENANCY_SCHEMA_POOL_SIZE = 2
    schema_pool.fill(2)
    spares = schema_pool.spare_names()
    assert len(spares) >= 2
    with pytest.raises(RuntimeError), transaction.atomic():
        assert schema_factory.create_tenant_schema("fast_claimed") == "spare"
        assert len(schema_pool.spare_names()) == len(spares) - 1
        raise RuntimeError("boom")
    assert schema_pool.spare_names() == spares
    assert not schema_exists("fast_claimed")


def test_existing_schema_is_an_error_not_a_reuse(no_pool):
    schema_factory.create_tenant_schema("fast_twice")
    with pytest.raises(Exception, match="already exists"), transaction.atomic():
        schema_factory.create_tenant_schema("fast_twice")


def test_stale_spares_are_never_claimed_and_prepare_drops_them(settings):
    settings.TENANCY_SCHEMA_POOL_SIZE = 1
    stale = schema_pool.spare_prefix("000000000000") + "0123456789abcdef"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA "{stale}"')
    for name in schema_pool.spare_names():  # only the stale one may be left to claim
        schema_factory.drop_schema(name)
    assert schema_factory.create_tenant_schema("fast_not_stale") == "script"
    report = schema_factory.prepare(spares=1)
    assert stale in report["dropped"]
    assert not schema_exists(stale)
    assert report["spares_ready"] == 1


@pytest.mark.parametrize(
    "name",
    [
        'x"; DROP SCHEMA public CASCADE; --',
        "public",
        "information_schema",
        "pg_catalog",
        "pg_anything",
        "_template_x",
        "Upper",
        "a" * 64,
        "",
        "with space",
        "semi;colon",
        "dot.ted",
        "ünicode",
    ],
)
def test_create_tenant_schema_refuses_names_that_are_not_tenant_schemas(name):
    with pytest.raises(schema_factory.SchemaNameRefused):
        schema_factory.create_tenant_schema(name)
    assert schema_exists("public")


def test_script_quotes_the_schema_name_everywhere():
    script = schema_template.current_script()
    rendered = script.render("quoted_name")
    assert '"quoted_name".' in rendered
    assert schema_template.template_schema_name() not in rendered
    # Every mention of the schema is the quoted identifier.
    assert rendered.count("quoted_name") == rendered.count('"quoted_name"')


def test_orphan_schemas_are_found_and_cleaned(no_pool):
    from django.core.management import call_command

    schema_factory.create_tenant_schema("left_behind")
    assert schema_factory.orphan_schemas() == ["left_behind"]
    out = StringIO()
    call_command("clean_orphan_schemas", "--dry-run", stdout=out)
    assert "orphan   left_behind" in out.getvalue()
    assert schema_exists("left_behind")
    call_command("clean_orphan_schemas", verbosity=0)
    assert not schema_exists("left_behind")
    assert schema_factory.orphan_schemas() == []
    assert schema_exists("acme")  # tenants' schemas are not orphans


def test_objects_the_script_cannot_copy_fall_back_to_the_migrations(
    monkeypatch, no_pool, migrated_reference
):
    template = schema_template.ensure_template()
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE VIEW "{template}".user_names AS SELECT username FROM auth_user')
    with pytest.raises(schema_template.UnsupportedTemplate, match="views"):
        schema_template.generate_script(template)
    monkeypatch.setattr(schema_template, "_scripts", {})  # as in a new process
    assert schema_factory.create_tenant_schema("fallback") == "migrations"
    assert describe_schema("fallback") == migrated_reference


def test_prepare_command_reports_the_template_and_the_pool(empty_pool):
    from django.core.management import call_command

    out = StringIO()
    call_command("prepare_tenant_schemas", "--spares", "2", stdout=out)
    text = out.getvalue()
    assert f"template {schema_template.template_schema_name()}" in text
    assert "spares   2 ready (2 made now)" in text
    assert len(schema_pool.spare_names()) == 2
    out = StringIO()
    call_command("prepare_tenant_schemas", "--spares", "2", stdout=out)
    assert "spares   2 ready (0 made now)" in out.getvalue()
