"""What a schema holds, read from PostgreSQL's catalogs, for comparing two tenant schemas.

Written independently of tenants.provisioning.schema_template (information_schema where it has
the answer), so a mistake in the script generator cannot hide behind the same mistake here.
"""

from django.db import connection

IGNORED_COLUMNS = {("django_migrations", "applied")}  # when each migration ran differs by nature


def describe_schema(schema: str) -> dict:
    def rows(query, params=None):
        with connection.cursor() as cursor:
            cursor.execute(query, params if params is not None else [schema])
            return [tuple(_relative(v, schema) for v in row) for row in cursor.fetchall()]

    tables = [
        r[0]
        for r in rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "ORDER BY table_name"
        )
    ]
    description = {
        "tables": rows(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_schema = %s ORDER BY table_name"
        ),
        "relations": rows(
            "SELECT c.relname, c.relkind, c.relpersistence, c.reloptions, c.relacl, "
            "pg_get_userbyid(c.relowner), c.reltoastrelid <> 0, c.relhasindex, c.relchecks "
            "FROM pg_class c WHERE c.relnamespace = "
            "(SELECT oid FROM pg_namespace WHERE nspname = %s) ORDER BY c.relname"
        ),
        "columns": rows(
            "SELECT table_name, column_name, "
            "rank() OVER (PARTITION BY table_name ORDER BY ordinal_position), data_type, "
            "udt_schema, udt_name, character_maximum_length, numeric_precision, numeric_scale, "
            "datetime_precision, is_nullable, column_default, is_identity, identity_generation, "
            "identity_start, identity_increment, identity_maximum, identity_minimum, "
            "identity_cycle, is_generated, collation_name, is_updatable "
            "FROM information_schema.columns WHERE table_schema = %s "
            "ORDER BY table_name, ordinal_position"
        ),
        "constraints": rows(
            "SELECT t.relname, k.conname, k.contype, k.condeferrable, k.condeferred, "
            "k.convalidated, pg_get_constraintdef(k.oid, true), fn.nspname, f.relname, "
            "k.confupdtype, k.confdeltype, k.confmatchtype, ic.relname "
            "FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid "
            "LEFT JOIN pg_class f ON f.oid = k.confrelid "
            "LEFT JOIN pg_namespace fn ON fn.oid = f.relnamespace "
            "LEFT JOIN pg_class ic ON ic.oid = k.conindid "
            "WHERE k.connamespace = (SELECT oid FROM pg_namespace WHERE nspname = %s) "
            "ORDER BY t.relname, k.conname"
        ),
        "indexes": rows(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %s "
            "ORDER BY tablename, indexname"
        ),
        "index_flags": rows(
            "SELECT c.relname, i.indisunique, i.indisprimary, i.indisexclusion, i.indimmediate, "
            "i.indisvalid, i.indisready, i.indislive, i.indnkeyatts, i.indnatts "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = %s) "
            "ORDER BY c.relname"
        ),
        "sequences": rows(
            "SELECT sequencename, data_type::text, start_value, min_value, max_value, "
            "increment_by, cycle, cache_size, last_value FROM pg_sequences "
            "WHERE schemaname = %s ORDER BY sequencename"
        ),
        "sequence_owners": rows(
            "SELECT s.relname, d.deptype, t.relname, a.attname FROM pg_class s "
            "JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass "
            "AND d.refclassid = 'pg_class'::regclass "
            "JOIN pg_class t ON t.oid = d.refobjid "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid "
            "WHERE s.relkind = 'S' AND s.relnamespace = "
            "(SELECT oid FROM pg_namespace WHERE nspname = %s) ORDER BY s.relname"
        ),
        "comments": rows(
            "SELECT c.relname, d.objsubid, d.description FROM pg_description d "
            "JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass "
            "WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = %s) "
            "ORDER BY 1, 2"
        ),
        "triggers": rows(
            "SELECT event_object_table, trigger_name FROM information_schema.triggers "
            "WHERE trigger_schema = %s ORDER BY 1, 2"
        ),
        "routines": rows(
            "SELECT routine_name FROM information_schema.routines WHERE routine_schema = %s"
        ),
        "data": {table: _table_rows(schema, table) for table in tables},
    }
    return description


def _table_rows(schema, table):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            [schema, table],
        )
        columns = [r[0] for r in cursor.fetchall() if (table, r[0]) not in IGNORED_COLUMNS]
        quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
        cursor.execute(
            f"SELECT {quoted} FROM {connection.ops.quote_name(schema)}."
            f"{connection.ops.quote_name(table)} ORDER BY {quoted}"
        )
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
