"""The target: whether it may be written, which schemas are done, and writing one schema.

A schema is written in one transaction that ends by recording it in ``public.tenancy_upgrade``
(the marker table): a schema is either complete and marked, or absent.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import models
from psycopg import sql
from psycopg.types.json import Jsonb

from tenants import postgres
from tenants.conf import public_schema
from tenants.models import Tenant
from tenants.operations.upgrade.errors import UpgradeError
from tenants.operations.upgrade.plan import Plan
from tenants.operations.upgrade.tables import Table

MARKER_TABLE = "tenancy_upgrade"


def _marker_table() -> sql.Identifier:
    return sql.Identifier(public_schema(), MARKER_TABLE)


def table_exists(conn, schema: str, table: str) -> bool:
    name = sql.Identifier(schema, table).as_string(conn)
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", [name]).fetchone()[0]


def ensure_marker_table(conn):
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (schema_name text PRIMARY KEY, tenant_slug text, "
            "source text NOT NULL, rows integer NOT NULL, finished_at timestamptz NOT NULL "
            "DEFAULT now())"
        ).format(_marker_table())
    )


def done_schemas(conn) -> set[str]:
    """The schemas an earlier run wrote completely."""
    if not table_exists(conn, public_schema(), MARKER_TABLE):
        return set()
    query = sql.SQL("SELECT schema_name FROM {}").format(_marker_table())
    return {row[0] for row in conn.execute(query)}


def check_target_is_fresh(conn, done: set[str]):
    """A first run needs an empty target: no tenants, no users (migrations only)."""
    public = public_schema()
    if public in done:
        return
    tenants, users = (
        conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(public, model._meta.db_table))
        ).fetchone()[0]
        for model in (Tenant, get_user_model())
    )
    if tenants or users:
        raise UpgradeError(
            f"The target database already has {tenants} tenants and {users} users that this "
            "upgrade did not write. Upgrade into a new, empty database."
        )


def check_no_foreign_schemas(conn, todo: list[str]):
    """None of the schemas still to write exists: another hand made it."""
    with conn.cursor() as cursor:
        existing = postgres.existing_schemas(cursor, todo)
    clash = sorted(existing - {public_schema()})
    if clash:
        raise UpgradeError(
            f"Schemas {', '.join(clash[:5])} exist in the target but were not written "
            "by this upgrade; upgrade into a new, empty database."
        )


def write_schema(
    conn, plan: Plan, schema: str, tables: dict[str, Table], source_url: str, clone_sql: str | None
):
    """One schema in one transaction: (clone,) copy every table, set sequences, mark done."""
    with conn.transaction():
        if clone_sql:
            # The template script names public tables as seen from the public search path.
            conn.execute(
                sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(public_schema()))
            )
            conn.execute(clone_sql)
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        total = 0
        for name, table in tables.items():
            rows = plan.rows[schema].get(name, [])
            if rows:
                _copy_rows(conn, schema, table, rows)
                total += len(rows)
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (schema_name, tenant_slug, source, rows) VALUES (%s, %s, %s, %s)"
            ).format(_marker_table()),
            [schema, plan.slug_of(schema), _redacted(source_url), total],
        )


def _copy_rows(conn, schema: str, table: Table, rows: list[tuple]):
    """``rows`` into ``table`` with COPY, then its sequence past the highest id."""
    target = sql.Identifier(schema, table.name)
    query = sql.SQL("COPY {} ({}) FROM STDIN").format(
        target, sql.SQL(", ").join(map(sql.Identifier, table.columns))
    )
    with conn.cursor().copy(query) as copy:
        for row in rows:
            copy.write_row([_for_write(f, v) for f, v in zip(table.fields, row, strict=True)])
    if isinstance(table.model._meta.pk, models.AutoField):
        conn.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence({}, {}), (SELECT max({}) FROM {}) + 1, false)"
            ).format(
                sql.Literal(target.as_string(conn)),
                sql.Literal(table.pk),
                sql.Identifier(table.pk),
                target,
            )
        )


def _for_write(field: models.Field, value):
    if value is not None and field.get_internal_type() == "JSONField":
        return Jsonb(value)
    return value


def _redacted(url: str) -> str:
    """``url`` without its password, as recorded in the marker table."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}@{host}"
    return url
