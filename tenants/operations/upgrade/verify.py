"""Verification: every schema and table of the target against the plan from a fresh read of
the source, by row count and a checksum of the rows (values in their canonical form)."""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json
from dataclasses import dataclass

import psycopg
from psycopg import sql

from tenants import postgres
from tenants.conf import public_schema
from tenants.operations.upgrade.plan import Plan
from tenants.operations.upgrade.source import normalised, select_sql
from tenants.operations.upgrade.tables import Table


@dataclass
class Mismatch:
    schema: str
    table: str
    expected_rows: int
    actual_rows: int
    detail: str


def find_mismatches(conn, plan: Plan, tables: dict[str, Table]) -> list[Mismatch]:
    """What differs between the target and ``plan``: each table's rows, and each tenant
    schema's content types (which must have public's ids)."""
    problems = []
    public_cts = _content_types(conn, public_schema())
    for schema in plan.schemas():
        for name, expected in plan.rows[schema].items():
            problem = _compare_table(conn, schema, tables[name], expected)
            if problem is not None:
                problems.append(problem)
        if schema == public_schema():
            continue
        cts = _content_types(conn, schema)
        if cts != public_cts:
            problems.append(
                Mismatch(
                    schema,
                    "django_content_type",
                    len(public_cts),
                    len(cts),
                    "ids differ from public",
                )
            )
    return problems


def _compare_table(conn, schema: str, table: Table, expected: list[tuple]) -> Mismatch | None:
    query = select_sql(sql.Identifier(schema, table.name), table.columns, table.pk)
    try:
        actual = normalised(table, conn.execute(query).fetchall())
    except psycopg.Error as error:
        return Mismatch(schema, table.name, len(expected), -1, postgres.describe_error(error))
    if len(actual) != len(expected):
        return Mismatch(schema, table.name, len(expected), len(actual), "row count")
    if checksum(actual) != checksum(expected):
        return Mismatch(schema, table.name, len(expected), len(actual), "checksum")
    return None


def _content_types(conn, schema: str) -> list[tuple]:
    query = select_sql(
        sql.Identifier(schema, "django_content_type"), ["id", "app_label", "model"], "id"
    )
    return conn.execute(query).fetchall()


def checksum(rows: list[tuple]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update("\x1f".join(_canonical(v) for v in row).encode())
        digest.update(b"\x1e")
    return digest.hexdigest()


def _canonical(value) -> str:
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value.normalize())
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return repr(value)
