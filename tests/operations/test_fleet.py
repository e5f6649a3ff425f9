"""Fleet migrations (manage.py tenants migrate), on a database of their own, over the real CLI.

The schemas start as clones of a migrated template (create_bench_tenants); the bench app's
migrations (tests/support/migrate_stages) are then made available stage by stage. Whatever the
fleet does to a schema must equal what Django's own executor (django-tenants' migrate_schemas)
does to a twin schema: the catalogs are compared.
"""

import pytest
from django.db import connection

from tests.support import servers
from tests.support.catalog import MIGRATION_MADE, describe_schema, differences
from tests.support.postgres import create_database, database_url, drop_database, postgres_rows

pytestmark = [pytest.mark.schema_only, pytest.mark.django_db]

TENANTS = 6


@pytest.fixture(scope="module")
def fleet_db(django_db_setup):
    """A fresh database: public migrated, TENANTS bench tenants; yields its URL."""
    url = database_url(f"{connection.settings_dict['NAME']}_fleet")
    create_database(url)
    manage(url, 1, "migrate_schemas", "--shared", "-v0", check=True)
    manage(url, 1, "create_bench_tenants", str(TENANTS), check=True)
    yield url
    drop_database(url)


def manage(url, stage, *args, check=False):
    env = {
        "TENANCY_MODE": "schema",
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "tests.support.migrate_stages.settings",
        "MIGRATE_BENCH_STAGE": str(stage),
    }
    return servers.manage(*args, env=env, check=check, timeout=300)


def applied(url, schema, app="migrate_bench_app"):
    rows = postgres_rows(
        url, f'SELECT name FROM "{schema}".django_migrations WHERE app = %s', [app]
    )
    return sorted(name for (name,) in rows)


def schemas():
    return [f"bench_{n:05d}" for n in range(1, TENANTS + 1)]


def reset_bench_app(url, *extra):
    """Take the bench app out of every tenant schema again (tables and migration rows)."""
    for schema in [*schemas(), *extra]:
        postgres_rows(
            url,
            f"SET search_path TO {schema}; DROP TABLE IF EXISTS migrate_bench_app_gadget_widgets, "
            "migrate_bench_app_gadget, migrate_bench_app_widget CASCADE; "
            "DELETE FROM django_migrations WHERE app = 'migrate_bench_app'",
        )


def test_nothing_to_apply(fleet_db):
    manage(fleet_db, 1, "tenants", "migrate", check=True)
    done = manage(fleet_db, 1, "tenants", "migrate")
    assert done.returncode == 0, done.stderr
    assert f"{TENANTS} tenant schemas: nothing to apply" in done.stdout
    assert manage(fleet_db, 1, "tenants", "migrate", "--check").returncode == 0


def test_stage_by_stage_equals_djangos_executor(fleet_db):
    """bench_00001 is migrated by the fleet, bench_00002 by migrate_schemas; after every
    stage their catalogs (tables, columns, constraints, indexes, sequences, migration rows,
    content types, permissions) are equal, and content type ids equal public's."""
    reset_bench_app(fleet_db)
    expected_how = {
        1: "precomputed SQL",  # CreateModel, FKs to a tenant table and to public
        2: "precomputed SQL",  # AddField with a default
        3: "precomputed SQL",  # AlterField, RenameField, constraints, M2M, RemoveField
        4: "Django executor",  # RunPython
    }
    for stage in (1, 2, 3, 4):
        manage(fleet_db, stage, "migrate_schemas", "--shared", "-v0", check=True)
        check = manage(fleet_db, stage, "tenants", "migrate", "--check")
        assert check.returncode == 1 and "pending" in check.stderr
        done = manage(fleet_db, stage, "tenants", "migrate", "--tenant", "bench-00001")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"via {expected_how[stage]}" in done.stdout
        manage(fleet_db, stage, "migrate_schemas", "--schema", "bench_00002", "-v0", check=True)
        fleet, django = (
            describe_schema(schema, url=fleet_db, data_of=MIGRATION_MADE)
            for schema in ("bench_00001", "bench_00002")
        )
        assert fleet == django, f"stage {stage}: {differences(fleet, django)}"
        public = describe_schema("public", url=fleet_db, data_of=MIGRATION_MADE[1:])
        for table in ("django_content_type", "auth_permission"):
            assert fleet["data"][table] == public["data"][table]
    content_types, permissions = (fleet["data"][t] for t in MIGRATION_MADE[1:])
    assert ("migrate_bench_app", "gadget") in {row[1:] for row in content_types}
    assert any("tune_gadget" in row for row in permissions)


def test_whole_fleet_then_rerun_applies_only_what_is_left(fleet_db):
    reset_bench_app(fleet_db)
    done = manage(fleet_db, 4, "tenants", "migrate", "--jobs", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    for schema in schemas():
        assert applied(fleet_db, schema)[-1] == "0004_number_widgets"
    # Not a terminal: plain progress lines and a summary table, no redraws.
    assert "tenant schemas: " in done.stdout and "done, 0 failed" in done.stdout
    assert "Fleet migration" in done.stdout and "\x1b[" not in done.stdout
    again = manage(fleet_db, 4, "tenants", "migrate")
    assert "nothing to apply" in again.stdout


def test_a_failing_tenant_is_named_the_others_migrate_and_a_rerun_finishes(fleet_db):
    reset_bench_app(fleet_db)
    manage(fleet_db, 1, "tenants", "migrate", check=True)
    postgres_rows(
        fleet_db, "ALTER TABLE bench_00003.migrate_bench_app_widget ADD COLUMN score text"
    )
    done = manage(fleet_db, 2, "tenants", "migrate")
    assert done.returncode == 1
    assert "bench-00003" in done.stdout and "bench_00003" in done.stdout
    assert 'column "score" of relation "migrate_bench_app_widget" already exists' in done.stdout
    assert f"1 of {TENANTS} tenant schemas failed; every other one is migrated" in done.stderr
    assert applied(fleet_db, "bench_00003") == ["0001_initial"]  # untouched
    for schema in schemas():
        if schema != "bench_00003":
            assert applied(fleet_db, schema) == ["0001_initial", "0002_widget_score"]
    postgres_rows(fleet_db, "ALTER TABLE bench_00003.migrate_bench_app_widget DROP COLUMN score")
    rerun = manage(fleet_db, 2, "tenants", "migrate")
    assert rerun.returncode == 0, rerun.stdout
    assert "1 schemas: migrate_bench_app.0002_widget_score" in rerun.stdout
    assert applied(fleet_db, "bench_00003") == ["0001_initial", "0002_widget_score"]


def test_missing_schema_and_fresh_schema(fleet_db):
    reset_bench_app(fleet_db)
    manage(fleet_db, 2, "tenants", "migrate", check=True)
    postgres_rows(
        fleet_db,
        "INSERT INTO tenants_tenant (schema_name, name, slug, is_active, created_at) VALUES "
        "('ghost', 'Ghost', 'ghost', true, now()), ('fresh', 'Fresh', 'fresh', true, now());"
        "CREATE SCHEMA fresh;",
    )
    try:
        done = manage(fleet_db, 2, "tenants", "migrate")
        assert done.returncode == 1
        assert "ghost (ghost)" in done.stdout and "the schema does not exist" in done.stdout
        # A schema with nothing in it gets every migration (Django's executor: RunPython).
        assert "via Django executor" in done.stdout
        assert applied(fleet_db, "fresh", app="auth")[-1].startswith("0012")
        assert applied(fleet_db, "fresh")[-1] == "0002_widget_score"
        fresh, clone = (
            describe_schema(schema, url=fleet_db, data_of=()) for schema in ("fresh", "bench_00001")
        )
        structure = ("columns", "constraints", "indexes", "sequences", "migrations")
        fresh, clone = ({k: s[k] for k in structure} for s in (fresh, clone))
        assert fresh == clone, differences(fresh, clone)
    finally:
        postgres_rows(
            fleet_db,
            "DELETE FROM tenants_tenant WHERE slug IN ('ghost', 'fresh');"
            "DROP SCHEMA IF EXISTS fresh CASCADE",
        )


def test_plan_shows_groups_and_changes_nothing(fleet_db):
    reset_bench_app(fleet_db)
    manage(fleet_db, 1, "tenants", "migrate", check=True)
    done = manage(fleet_db, 2, "tenants", "migrate", "--plan", "-v", "2")
    assert done.returncode == 0
    assert "migrate_bench_app.0002_widget_score" in done.stdout
    assert 'ADD COLUMN "score" integer DEFAULT 0 NOT NULL' in done.stdout
    assert applied(fleet_db, "bench_00006") == ["0001_initial"]
