"""What a schema is and holds, read from PostgreSQL's catalogs, comparable across schemas.

Tests compare two schemas that must be identical: one made fast (a clone, a spare, a fleet
migration) and one made by Django's own migrations. Everything is compared: tables and other
relations, columns (in order; dropped columns' gaps aside), constraints, indexes, sequences and
where they stand, triggers, routines, comments, the migrations recorded, and the rows of every
table (or of the tables named). The schema's own name is taken out, so two schemas compare.

Written independently of tenants.provisioning.schema_template (information_schema where it has
the answer), so a mistake in the script generator cannot hide behind the same mistake here.
"""

from __future__ import annotations

from contextlib import contextmanager

import psycopg
from django.db import connection

# When each migration ran differs by nature.
IGNORED_COLUMNS = {("django_migrations", "applied")}
# The rows that migrations make, in every tenant schema.
MIGRATION_MADE = ("django_migrations", "django_content_type", "auth_permission")
NAMESPACE = "(SELECT oid FROM pg_namespace WHERE nspname = %(schema)s)"

CATALOG_QUERIES = {
    "tables": """
        SELECT table_name, table_type FROM information_schema.tables
        WHERE table_schema = %(schema)s ORDER BY table_name""",
    "relations": f"""
        SELECT c.relname, c.relkind, c.relpersistence, c.reloptions, c.relacl,
               pg_get_userbyid(c.relowner), c.reltoastrelid <> 0, c.relhasindex, c.relchecks
        FROM pg_class c WHERE c.relnamespace = {NAMESPACE} ORDER BY c.relname""",
    "columns": """
        SELECT table_name, column_name,
               rank() OVER (PARTITION BY table_name ORDER BY ordinal_position), data_type,
               udt_schema, udt_name, character_maximum_length, numeric_precision,
               numeric_scale, datetime_precision, is_nullable, column_default, is_identity,
               identity_generation, identity_start, identity_increment, identity_maximum,
               identity_minimum, identity_cycle, is_generated, collation_name, is_updatable
        FROM information_schema.columns WHERE table_schema = %(schema)s
        ORDER BY table_name, ordinal_position""",
    "constraints": f"""
        SELECT t.relname, k.conname, k.contype, k.condeferrable, k.condeferred,
               k.convalidated, pg_get_constraintdef(k.oid, true), fn.nspname, f.relname,
               k.confupdtype, k.confdeltype, k.confmatchtype, ic.relname
        FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid
        LEFT JOIN pg_class f ON f.oid = k.confrelid
        LEFT JOIN pg_namespace fn ON fn.oid = f.relnamespace
        LEFT JOIN pg_class ic ON ic.oid = k.conindid
        WHERE k.connamespace = {NAMESPACE} ORDER BY t.relname, k.conname""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %(schema)s
        ORDER BY tablename, indexname""",
    "index_flags": f"""
        SELECT c.relname, i.indisunique, i.indisprimary, i.indisexclusion, i.indimmediate,
               i.indisvalid, i.indisready, i.indislive, i.indnkeyatts, i.indnatts
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relnamespace = {NAMESPACE} ORDER BY c.relname""",
    "sequences": """
        SELECT sequencename, data_type::text, start_value, min_value, max_value,
               increment_by, cycle, cache_size FROM pg_sequences
        WHERE schemaname = %(schema)s ORDER BY sequencename""",
    # Where each sequence stands: apart, so that a comparison of structure alone can leave it.
    "sequence_values": """
        SELECT sequencename, last_value FROM pg_sequences
        WHERE schemaname = %(schema)s ORDER BY sequencename""",
    "sequence_owners": f"""
        SELECT s.relname, d.deptype, t.relname, a.attname FROM pg_class s
        JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass
        AND d.refclassid = 'pg_class'::regclass
        JOIN pg_class t ON t.oid = d.refobjid
        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
        WHERE s.relkind = 'S' AND s.relnamespace = {NAMESPACE} ORDER BY s.relname""",
    "comments": f"""
        SELECT c.relname, d.objsubid, d.description FROM pg_description d
        JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass
        WHERE c.relnamespace = {NAMESPACE} ORDER BY 1, 2""",
    "triggers": """
        SELECT event_object_table, trigger_name FROM information_schema.triggers
        WHERE trigger_schema = %(schema)s ORDER BY 1, 2""",
    "routines": """
        SELECT routine_name FROM information_schema.routines
        WHERE routine_schema = %(schema)s ORDER BY 1""",
}


def describe_schema(schema: str, *, url: str | None = None, data_of=None) -> dict:
    """The schema's catalog, by part, and under "data" the rows of each table of ``data_of``
    (default: every table). Read through Django's connection, or a connection of its own to
    the database at ``url``."""
    with _cursor(url) as cursor:

        def rows(query, params):
            cursor.execute(query, params)
            return [tuple(_relative(value, schema) for value in row) for row in cursor.fetchall()]

        description = {
            part: rows(query, {"schema": schema}) for part, query in CATALOG_QUERIES.items()
        }
        tables = [name for name, _type in description["tables"]]
        description["migrations"] = rows(
            f"SELECT app, name FROM {_quote(schema)}.django_migrations ORDER BY app, name", None
        )
        description["data"] = {
            table: _table_rows(cursor, schema, table)
            for table in (tables if data_of is None else data_of)
        }
    return description


def differences(a: dict, b: dict) -> dict[str, tuple[list, list]]:
    """Per part (per table for the data), the rows only in ``a`` and only in ``b``: what a
    failed comparison of two descriptions shows."""
    a, b = _flat(a), _flat(b)
    diff = {}
    for key in sorted(a.keys() | b.keys()):
        left, right = a.get(key, []), b.get(key, [])
        if left != right:
            only_left = [row for row in left if row not in right]
            only_right = [row for row in right if row not in left]
            diff[key] = (only_left, only_right)
    return diff


def _flat(description):
    parts = {k: v for k, v in description.items() if k != "data"}
    parts.update({f"data:{t}": rows for t, rows in description.get("data", {}).items()})
    return parts


@contextmanager
def _cursor(url):
    if url is None:
        with connection.cursor() as cursor:
            yield cursor
    else:
        with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
            yield cursor


def _quote(name):
    return '"' + name.replace('"', '""') + '"'


def _table_rows(cursor, schema, table):
    cursor.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        [schema, table],
    )
    columns = [r[0] for r in cursor.fetchall() if (table, r[0]) not in IGNORED_COLUMNS]
    quoted = ", ".join(_quote(c) for c in columns)
    cursor.execute(f"SELECT {quoted} FROM {_quote(schema)}.{_quote(table)} ORDER BY {quoted}")
    return [tuple(str(v) for v in row) for row in cursor.fetchall()]


def _relative(value, schema):
    """Catalog text with the schema's own name replaced, so two schemas can be compared."""
    if value == schema:
        return "<schema>"
    if isinstance(value, str):
        return value.replace(f"{schema}.", "<schema>.").replace(f'"{schema}".', "<schema>.")
    if isinstance(value, list):
        return [_relative(v, schema) for v in value]
    return value
