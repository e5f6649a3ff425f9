"""Fresh tenant schemas by cloning one migrated template: a blueprint of SQL, replayed per schema.

Migrating a new schema with Django renders the migration state and runs every migration (about
a second per schema); for a thousand benchmark tenants, or the schemas of an upgrade, that is
too slow. Here one template schema is migrated the normal way, once; ``pg_dump`` turns it into
DDL and its rows are captured as INSERTs (``django_migrations`` from the template; content
types and permissions from public, so that their ids agree across schemas).
Replaying that blueprint into a new schema is one round trip of plain SQL.

This is the benchmark's and the upgrade's provisioning path. It is kept behind
``provision_schemas()`` / ``SchemaBlueprint.sql_for()`` so it can be pointed at the shared fast
provisioning of the tenants app when that lands.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from django.core.management import call_command
from django.db import connection
from django_tenants.postgresql_backend.base import _check_schema_name
from psycopg import sql

from tenants import bulk_sql

# Slugs never contain "--", so schema names never contain "__": no tenant can own this name.
TEMPLATE_PREFIX = "tenant_template__"
# Django caches content type ids per process, not per schema: every schema must number them as
# public does. These tables are copied from public, not from the template.
FROM_PUBLIC = ("django_content_type", "auth_permission")
# Comments, session settings and psql meta-commands (\restrict): the rest is plain DDL.
_DROPPED_LINES = re.compile(r"^(--.*|\\.*|SET \w+ = .*;|SELECT pg_catalog\.set_config\(.*\);)$")


class CloneError(RuntimeError):
    """The template could not be built or dumped."""


@dataclass(frozen=True)
class SchemaBlueprint:
    """A migrated tenant schema as SQL, with ``template`` standing for the schema's name."""

    template: str
    ddl: str
    rows: tuple[tuple[str, str], ...]  # (table, "(columns) VALUES ..." for its rows)
    sequences: tuple[tuple[str, str], ...]  # (table, identity column) to move past the rows

    def sql_for(self, schema: str) -> str:
        """The statements that create ``schema`` as a copy of the template (no transaction)."""
        _check_schema_name(schema)
        target = sql.Identifier(schema).as_string()
        pattern = rf'(?<![\w"]){re.escape(self.template)}(?=[.;])'
        parts = [re.sub(pattern, lambda _: target, self.ddl)]
        for table, values in self.rows:
            parts.append(f"INSERT INTO {target}.{sql.Identifier(table).as_string()} {values};")
        for table, column in self.sequences:
            qualified = f"{target}.{sql.Identifier(table).as_string()}"
            parts.append(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({}, {}), "
                    "(SELECT coalesce(max({}), 0) + 1 FROM {}), false);"
                )
                .format(
                    sql.Literal(qualified),
                    sql.Literal(column),
                    sql.Identifier(column),
                    sql.SQL(qualified),
                )
                .as_string()
            )
        return "\n".join(parts)


@contextmanager
def template_schema():
    """A freshly migrated template schema (normal Django migrations), dropped afterwards."""
    name = f"{TEMPLATE_PREFIX}{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
        cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        call_command(
            "migrate_schemas", schema_name=name, tenant=True, interactive=False, verbosity=0
        )
        connection.set_schema_to_public()
        yield name
    finally:
        connection.set_schema_to_public()
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def build_blueprint() -> SchemaBlueprint:
    """Migrate a template schema once and capture it as a replayable blueprint."""
    with template_schema() as template:
        ddl = _dump_ddl(template)
        with bulk_sql.connect() as conn:
            rows, sequences = _capture_rows(conn, template)
    return SchemaBlueprint(template=template, ddl=ddl, rows=rows, sequences=sequences)


def _dump_ddl(schema: str) -> str:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise CloneError("pg_dump is not installed; it is needed to copy the template schema.")
    params = bulk_sql.connection_url_params()
    env = {**os.environ}
    if params.get("password"):
        env["PGPASSWORD"] = str(params["password"])
    argv = [pg_dump, "--schema-only", f"--schema={schema}", "--no-owner", "--no-privileges"]
    argv += ["--no-comments", "--no-publications", "--no-subscriptions", "--no-tablespaces"]
    for flag, key in (("--host", "host"), ("--port", "port"), ("--username", "user")):
        if params.get(key):
            argv.append(f"{flag}={params[key]}")
    argv.append(str(params["dbname"]))
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CloneError(f"pg_dump of the template schema failed: {done.stderr.strip()}")
    lines = [line for line in done.stdout.splitlines() if not _DROPPED_LINES.match(line)]
    return "\n".join(line for line in lines if line.strip())


def _capture_rows(conn, schema: str):
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY c.relname",
            [schema],
        )
    ]
    rows, sequences = [], []
    for table in tables:
        qualified = sql.Identifier(schema, table)
        if table in FROM_PUBLIC:
            qualified = sql.Identifier("public", table)
        cursor = conn.execute(sql.SQL("SELECT * FROM {} ORDER BY 1").format(qualified))
        columns = [d.name for d in cursor.description]
        data = cursor.fetchall()
        identity = conn.execute(
            "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND a.attidentity <> ''",
            [schema, table],
        ).fetchall()
        if data:
            values = sql.SQL("({}) VALUES {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(
                    sql.SQL("({})").format(sql.SQL(", ").join(map(sql.Literal, row)))
                    for row in data
                ),
            )
            rows.append((table, values.as_string(conn)))
            sequences.extend((table, column) for (column,) in identity)
    return tuple(rows), tuple(sequences)


def provision_schemas(
    schemas: Iterable[str],
    *,
    jobs: int = 2,
    blueprint: SchemaBlueprint | None = None,
    on_done: Callable[[str, Exception | None], None] | None = None,
) -> dict[str, Exception]:
    """Create each schema as a migrated, empty tenant schema; one transaction per schema.

    Returns the schemas that failed, with their errors (the others are complete).
    """
    schemas = list(schemas)
    if not schemas:
        return {}
    blueprint = blueprint or build_blueprint()
    failures: dict[str, Exception] = {}

    def work(chunk: list[str]):
        with bulk_sql.connect() as conn:
            for schema in chunk:
                error = None
                try:
                    bulk_sql.run_script(conn, f"BEGIN;\n{blueprint.sql_for(schema)}\nCOMMIT;")
                except Exception as exc:  # reported per schema; the others go on
                    error = failures[schema] = exc
                if on_done is not None:
                    on_done(schema, error)

    jobs = max(1, min(jobs, len(schemas)))
    chunks = [schemas[i::jobs] for i in range(jobs)]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(work, chunk) for chunk in chunks]:
            future.result()
    return failures
