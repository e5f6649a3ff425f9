"""What a schema is, read from PostgreSQL's catalog, comparable across schemas.

Tests compare a schema migrated by the fleet with one migrated by Django's own executor: the
same tables, columns (in the same order; dropped columns' gaps aside), defaults, constraints,
indexes and sequences, and the same rows in the tables migrations fill (django_migrations,
content types, permissions).
"""

from __future__ import annotations

import psycopg

CATALOG_QUERIES = {
    "columns": """
        SELECT table_name, column_name,
               row_number() OVER (PARTITION BY table_name ORDER BY ordinal_position),
               data_type, character_maximum_length,
               numeric_precision, is_nullable, column_default, is_identity, identity_generation
        FROM information_schema.columns WHERE table_schema = %(schema)s
        ORDER BY table_name, ordinal_position""",
    "constraints": """
        SELECT rel.relname, con.conname, con.contype, pg_get_constraintdef(con.oid),
               con.condeferrable, con.condeferred
        FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = rel.relnamespace
        WHERE n.nspname = %(schema)s ORDER BY rel.relname, con.conname""",
    "indexes": """
        SELECT tablename, indexname, replace(indexdef, %(prefix)s, 'SCHEMA.')
        FROM pg_indexes WHERE schemaname = %(schema)s ORDER BY tablename, indexname""",
    "sequences": """
        SELECT sequencename, data_type, start_value, increment_by
        FROM pg_sequences WHERE schemaname = %(schema)s ORDER BY sequencename""",
    "migrations": "SELECT app, name FROM {schema}.django_migrations ORDER BY app, name",
    "content_types": "SELECT id, app_label, model FROM {schema}.django_content_type ORDER BY id",
    "permissions": """
        SELECT id, content_type_id, codename, name FROM {schema}.auth_permission ORDER BY id""",
}


def snapshot(conn: psycopg.Connection, schema: str) -> dict[str, list[tuple]]:
    """The schema's structure and migration-made rows, with its own name taken out."""
    conn.execute("SET search_path TO pg_catalog")  # constraint definitions fully qualified
    result = {}
    quoted = psycopg.sql.Identifier(schema).as_string(conn)
    params = {"schema": schema, "prefix": f"{schema}."}
    for name, query in CATALOG_QUERIES.items():
        rows = conn.execute(query.replace("{schema}", quoted), params).fetchall()
        result[name] = [tuple(_anonymise(value, schema) for value in row) for row in rows]
    return result


def _anonymise(value, schema):
    if isinstance(value, str):
        return value.replace(f'"{schema}".', "SCHEMA.").replace(f"{schema}.", "SCHEMA.")
    return value


def differences(a: dict, b: dict) -> dict[str, tuple[list, list]]:
    """Per catalog part, the rows only in ``a`` and only in ``b`` (empty when equal)."""
    diff = {}
    for key in a.keys() | b.keys():
        left, right = set(a.get(key, [])), set(b.get(key, []))
        if left != right:
            diff[key] = (sorted(left - right, key=str), sorted(right - left, key=str))
    return diff
