"""The tenant schema as the migrations make it, turned into one SQL script (schema mode).

Running every migration for a new schema is slow, and django-tenants' ``clone_schema`` function
walks the catalog of every schema each time (slower as the fleet grows; figures in
docs/benchmarks.md, reasons in docs/decisions/0004-spare-schema-pool-and-template-script.md).
Instead:

1. **Template.** Once per set of migrations, a schema named ``_template_<fingerprint>`` is made
   by the real migration machinery (django-tenants' ``migrate_schemas``, post-migrate signals
   included). The fingerprint covers the migration files, the installed apps and the models'
   permissions, so changed code gets a new template and never a stale one.
2. **Script.** Once per process, the template's catalog is read and written out as plain DDL and
   data (tables, identity sequences and their values, defaults, constraints, indexes, comments,
   the rows of ``django_migrations``, content types and permissions). Where the template's name
   appeared, the script has a slot; :meth:`SchemaScript.render` fills it with the new schema's
   quoted name (``psycopg.sql.Identifier``), so no name reaches SQL unquoted.

Running the script is one round trip, the same statements whatever the number of tenants (its
time: docs/benchmarks.md). A schema it makes is identical to one made by the migrations
(tests/provisioning/test_fast_schemas.py compares the catalogs). Objects the script does not know
how to copy (views, triggers, functions, ...) make :func:`current_script` raise
:class:`UnsupportedTemplate`; callers then fall back to the migrations.

References to tables in other schemas (none in today's tenant tables, whose tenant column has
no database constraint; a migration may add one) are written as PostgreSQL prints them under
the ``public`` search path that platform code runs with, and the script is only run with that
search path (see ``tenants.provisioning.schema_factory``).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import django
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections, transaction
from psycopg import sql

from tenants import postgres
from tenants.runtime.context import no_tenant

logger = logging.getLogger(__name__)

TEMPLATE_PREFIX = "_template_"
FINGERPRINT_LENGTH = 12


class UnsupportedTemplate(Exception):
    """The template schema holds objects the script generator cannot reproduce exactly."""


# --- Fingerprint ---------------------------------------------------------------------------------

_fingerprint: str | None = None
_fingerprint_lock = threading.Lock()


def migrations_fingerprint() -> str:
    """A short hash of everything that decides what a freshly migrated tenant schema holds."""
    global _fingerprint
    with _fingerprint_lock:
        if _fingerprint is None:
            _fingerprint = _compute_fingerprint()
        return _fingerprint


def _compute_fingerprint() -> str:
    from django.db.migrations.loader import MigrationLoader

    digest = hashlib.sha256()
    digest.update(f"django {django.get_version()}\n".encode())
    digest.update(f"apps {list(settings.INSTALLED_APPS)} {list(settings.TENANT_APPS)}\n".encode())
    loader = MigrationLoader(None, ignore_no_migrations=True)
    for key in sorted(loader.disk_migrations):
        migration = loader.disk_migrations[key]
        source = Path(inspect.getfile(type(migration))).read_bytes()
        digest.update(f"migration {key}\n".encode())
        digest.update(source)
    for model in sorted(apps.get_models(include_auto_created=True), key=lambda m: m._meta.label):
        opts = model._meta
        digest.update(
            f"model {opts.label_lower} {opts.verbose_name_raw!r} {opts.default_permissions!r} "
            f"{opts.permissions!r}\n".encode()
        )
    return digest.hexdigest()[:FINGERPRINT_LENGTH]


def template_schema_name() -> str:
    return f"{TEMPLATE_PREFIX}{migrations_fingerprint()}"


# --- Schemas made by the migrations ---------------------------------------------------------


def schema_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        return postgres.schema_exists(cursor, name)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for PostgreSQL advisory locks about ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def migrate_schema(name: str, using: str = "default") -> None:
    """Run every tenant migration in the existing schema ``name``: django-tenants' own path.

    Call it inside a transaction (django-tenants closes the connection otherwise).
    """
    call_command(
        "migrate_schemas",
        tenant=True,
        schema_name=name,
        interactive=False,
        verbosity=0,
        database=using,
    )
    connections[using].set_schema_to_public()


def migrate_new_schema(name: str) -> None:
    """Create schema ``name`` and run every tenant migration in it."""
    with no_tenant(), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(postgres.create_schema_sql(name))
        migrate_schema(name)


def ensure_template() -> str:
    """The name of the template schema for the current code, migrating it first if missing.

    Built in the caller's transaction under an advisory lock, so concurrent callers wait for one
    build instead of racing, and a build that is rolled back leaves nothing behind.
    """
    name = template_schema_name()
    if schema_exists(name):
        return name
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [advisory_key(name)])
        if not schema_exists(name):
            logger.info("Building tenant template schema %s by running migrations", name)
            migrate_new_schema(name)
    return name


# --- The script --------------------------------------------------------------------------------


class _Slot:
    """Where the new schema's quoted name goes in the script."""


SCHEMA = _Slot()


@dataclass(frozen=True)
class _QualifiedLiteral:
    """A string literal naming ``<new schema>.<relation>`` (for setval's regclass argument)."""

    relation: str


@dataclass(frozen=True)
class SchemaScript:
    """DDL and data that fill a new, empty schema; ``render(name)`` gives the SQL for ``name``.

    The script does not create the schema itself: run ``CREATE SCHEMA`` first.
    """

    fingerprint: str
    segments: tuple
    # (name, start, last value or None if never used) of every sequence, for reset_sequences().
    sequences: tuple = ()

    def render(self, schema_name: str) -> str:
        ident = sql.Identifier(schema_name).as_string()
        out = []
        for segment in self.segments:
            if segment is SCHEMA:
                out.append(ident)
            elif isinstance(segment, _QualifiedLiteral):
                out.append(_qualified_literal(ident, segment.relation))
            else:
                out.append(segment)
        return "".join(out)

    def reset_sequences(self, schema_name: str) -> str:
        """One statement that puts every sequence of ``schema_name`` back where the migrations
        left it. Sequences are never rolled back (``nextval`` is not transactional), so a spare
        schema that a rolled-back sign-up used comes back to the pool with its sequences moved.
        """
        ident = sql.Identifier(schema_name).as_string()
        calls = [
            f"pg_catalog.setval({_qualified_literal(ident, name)}, {int(last)}, true)"
            if last is not None
            else f"pg_catalog.setval({_qualified_literal(ident, name)}, {int(start)}, false)"
            for name, start, last in self.sequences
        ]
        return f"SELECT {', '.join(calls)}" if calls else ""

    @property
    def statement_count(self) -> int:
        return sum(segment.count(";\n") for segment in self.segments if isinstance(segment, str))


def _qualified_literal(schema_ident: str, relation: str) -> str:
    """A string literal naming ``<schema>.<relation>`` (a regclass argument), quoted twice over."""
    return sql.Literal(f"{schema_ident}.{sql.Identifier(relation).as_string()}").as_string()


_scripts: dict[str, SchemaScript] = {}
_scripts_lock = threading.Lock()


def current_script() -> SchemaScript:
    """The script for the current code, generated from the template once per process."""
    fingerprint = migrations_fingerprint()
    script = _scripts.get(fingerprint)
    if script is None:
        with _scripts_lock:
            script = _scripts.get(fingerprint)
            if script is None:
                with no_tenant():
                    script = generate_script(ensure_template(), fingerprint)
                _scripts[fingerprint] = script
    return script


def generate_script(template: str, fingerprint: str = "") -> SchemaScript:
    """Read schema ``template``'s catalog and write the SQL that recreates it elsewhere."""
    with connection.cursor() as cursor:
        return _ScriptWriter(cursor, template, fingerprint).write()


def _ident(name: str) -> str:
    return sql.Identifier(name).as_string()


class _ScriptWriter:
    def __init__(self, cursor, template: str, fingerprint: str):
        self.cursor = cursor
        self.template = template
        self.fingerprint = fingerprint
        self.segments: list = []
        cursor.execute(
            "SELECT oid, quote_ident(nspname) || '.' FROM pg_namespace WHERE nspname = %s",
            [template],
        )
        row = cursor.fetchone()
        if row is None:
            raise UnsupportedTemplate(f"Template schema {template!r} does not exist.")
        self.nsp_oid, self.qualifier = row

    # Helpers -------------------------------------------------------------------------------------

    def query(self, query: str, params=()):
        self.cursor.execute(query, [self.nsp_oid, *params])
        return self.cursor.fetchall()

    def records(self, query: str) -> list[dict]:
        """Rows of ``query`` (its one parameter: the template's oid) as dicts by column name."""
        self.cursor.execute(query, [self.nsp_oid])
        names = [column.name for column in self.cursor.description]
        return [dict(zip(names, row, strict=True)) for row in self.cursor.fetchall()]

    def emit(self, *parts):
        """Append parts of one statement: plain SQL text, SCHEMA or a _QualifiedLiteral."""
        self.segments.extend(parts)
        self.segments.append(";\n")

    def relocated(self, text: str) -> list:
        """Catalog text with every ``<template>.`` qualifier turned into the schema slot."""
        pieces = text.split(self.qualifier)
        out = [pieces[0]]
        for piece in pieces[1:]:
            out += [SCHEMA, "." + piece]
        return out

    # Writing -------------------------------------------------------------------------------------

    def write(self) -> SchemaScript:
        self.refuse_unsupported()
        tables = self.query(
            "SELECT c.oid, c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c "
            "WHERE c.relnamespace = %s AND c.relkind = 'r' ORDER BY c.relname"
        )
        columns = self.columns()
        sequences = self.sequences()
        for seq in sequences.values():
            if seq["identity_of"] is None:
                self.emit(
                    "CREATE SEQUENCE ",
                    SCHEMA,
                    f".{_ident(seq['name'])} AS {seq['type']} {seq['options']}",
                )
        for oid, name, _comment in tables:
            definitions = []
            for column in columns.get(oid, []):
                if definitions:
                    definitions.append(",\n  ")
                definitions += self.column_definition(column, sequences)
            self.emit("CREATE TABLE ", SCHEMA, f".{_ident(name)} (\n  ", *definitions, "\n)")
        for oid, name, _comment in tables:
            self.copy_rows(oid, name, columns.get(oid, []))
        for seq in sequences.values():
            if seq["last_value"] is not None:
                self.emit(
                    "SELECT pg_catalog.setval(",
                    _QualifiedLiteral(seq["name"]),
                    f", {int(seq['last_value'])}, true)",
                )
        self.constraints(tables, foreign=False)
        self.indexes()
        self.constraints(tables, foreign=True)
        self.comments(tables, columns)
        for seq in sequences.values():
            if seq["owned_by"] is not None:
                table, column = seq["owned_by"]
                self.emit(
                    "ALTER SEQUENCE ",
                    SCHEMA,
                    f".{_ident(seq['name'])} OWNED BY ",
                    SCHEMA,
                    f".{_ident(table)}.{_ident(column)}",
                )
        rendered_check = "".join(s for s in self.segments if isinstance(s, str))
        if self.qualifier in rendered_check or self.template in rendered_check:
            raise UnsupportedTemplate(
                f"The script still names template {self.template!r}; an object refers to it in "
                "a way the generator does not relocate."
            )
        return SchemaScript(
            self.fingerprint,
            tuple(self.segments),
            tuple((seq["name"], seq["start"], seq["last_value"]) for seq in sequences.values()),
        )

    def refuse_unsupported(self):
        checks = {
            "views, partitioned or foreign tables, composite types": (
                "SELECT relname FROM pg_class WHERE relnamespace = %s "
                "AND relkind NOT IN ('r', 'i', 'S')"
            ),
            "unlogged or temporary tables": (
                "SELECT relname FROM pg_class WHERE relnamespace = %s AND relpersistence <> 'p'"
            ),
            "storage options": (
                "SELECT relname FROM pg_class WHERE relnamespace = %s AND relkind IN ('r', 'S') "
                "AND reloptions IS NOT NULL"
            ),
            "privileges or owners other than the current user": (
                "SELECT relname FROM pg_class WHERE relnamespace = %s "
                "AND (relacl IS NOT NULL OR relowner <> (SELECT oid FROM pg_roles "
                "WHERE rolname = current_user))"
            ),
            "table inheritance": (
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE c.relnamespace = %s"
            ),
            "triggers": (
                "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE c.relnamespace = %s AND NOT t.tgisinternal"
            ),
            "row security policies": (
                "SELECT polname FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid "
                "WHERE c.relnamespace = %s"
            ),
            "rules": (
                "SELECT rulename FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class "
                "WHERE c.relnamespace = %s"
            ),
            "functions": "SELECT proname FROM pg_proc WHERE pronamespace = %s",
            "types": (
                "SELECT typname FROM pg_type t WHERE typnamespace = %s AND typrelid = 0 "
                "AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid "
                "AND e.typrelid <> 0)"
            ),
            "extended statistics": "SELECT stxname FROM pg_statistic_ext WHERE stxnamespace = %s",
            "generated columns": (
                "SELECT attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "WHERE c.relnamespace = %s AND a.attgenerated <> ''"
            ),
            "comments on indexes, constraints or sequences": (
                "SELECT objoid::text FROM pg_description d JOIN pg_class c ON c.oid = d.objoid "
                "WHERE d.classoid = 'pg_class'::regclass AND c.relnamespace = %s "
                "AND c.relkind <> 'r' UNION ALL SELECT conname FROM pg_description d "
                "JOIN pg_constraint k ON k.oid = d.objoid "
                "WHERE d.classoid = 'pg_constraint'::regclass AND k.connamespace = %s"
            ),
        }
        for what, query in checks.items():
            params = [self.nsp_oid] * (query.count("%s") - 1)
            found = self.query(query, params)
            if found:
                names = ", ".join(sorted(str(row[0]) for row in found)[:5])
                raise UnsupportedTemplate(f"Template has {what} ({names}).")

    def columns(self) -> dict:
        """Each table's columns (dicts), in order, by table oid."""
        rows = self.records(
            "SELECT a.attrelid AS relid, a.attnum AS num, a.attname AS name, "
            "format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull, "
            "pg_get_expr(d.adbin, d.adrelid) AS default, a.attidentity AS identity, "
            "CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation "
            "THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END AS collation, "
            "col_description(a.attrelid, a.attnum) AS comment "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_type t ON t.oid = a.atttypid "
            "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "LEFT JOIN pg_collation co ON co.oid = a.attcollation "
            "LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace "
            "WHERE c.relnamespace = %s AND c.relkind = 'r' AND a.attnum > 0 "
            "AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum"
        )
        columns: dict = {}
        for column in rows:
            columns.setdefault(column["relid"], []).append(column)
        return columns

    def sequences(self) -> dict:
        """Sequences by (table oid, column number) of their identity column, else by own oid."""
        rows = self.records(
            "SELECT s.seqrelid AS oid, c.relname AS name, format_type(s.seqtypid, NULL) AS type, "
            "s.seqstart AS start, s.seqincrement AS increment, s.seqmin AS minimum, "
            "s.seqmax AS maximum, s.seqcache AS cache, s.seqcycle AS cycle, "
            "pg_sequence_last_value(s.seqrelid) AS last_value, d.deptype, "
            "d.refobjid AS table_oid, d.refobjsubid AS column_num, tc.relname AS table, "
            "ta.attname AS column "
            "FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid "
            "LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid "
            "AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('i', 'a') "
            "LEFT JOIN pg_class tc ON tc.oid = d.refobjid "
            "LEFT JOIN pg_attribute ta ON ta.attrelid = d.refobjid AND ta.attnum = d.refobjsubid "
            "WHERE c.relnamespace = %s ORDER BY c.relname"
        )
        sequences = {}
        for seq in rows:
            owner = (seq["table"], seq["column"])
            identity = seq["deptype"] == "i"
            key = (seq["table_oid"], seq["column_num"]) if identity else seq["oid"]
            sequences[key] = {
                "name": seq["name"],
                "type": seq["type"],
                "options": (
                    f"INCREMENT BY {int(seq['increment'])} MINVALUE {int(seq['minimum'])} "
                    f"MAXVALUE {int(seq['maximum'])} START WITH {int(seq['start'])} "
                    f"CACHE {int(seq['cache'])} {'CYCLE' if seq['cycle'] else 'NO CYCLE'}"
                ),
                "start": int(seq["start"]),
                "last_value": seq["last_value"],
                "identity_of": owner if identity else None,
                "owned_by": owner if seq["deptype"] == "a" else None,
            }
        return sequences

    def column_definition(self, column, sequences) -> list:
        parts = [f"{_ident(column['name'])} {column['type']}"]
        if column["collation"]:
            parts.append(f" COLLATE {column['collation']}")
        if column["identity"]:
            seq = sequences[(column["relid"], column["num"])]
            kind = "ALWAYS" if column["identity"] == "a" else "BY DEFAULT"
            # The identity sequence takes the column's type.
            parts += [
                f" GENERATED {kind} AS IDENTITY (SEQUENCE NAME ",
                SCHEMA,
                f".{_ident(seq['name'])} {seq['options']})",
            ]
        elif column["default"] is not None:
            parts.append(" DEFAULT ")
            parts += self.relocated(column["default"])
        if column["notnull"]:
            parts.append(" NOT NULL")
        return parts

    def copy_rows(self, table_oid, table, columns):
        if not columns:
            return
        selects = sql.SQL(", ").join(
            sql.SQL("quote_nullable({}::text)").format(sql.Identifier(c["name"])) for c in columns
        )
        query = sql.SQL("SELECT {} FROM {}.{} ORDER BY {}").format(
            selects,
            sql.Identifier(self.template),
            sql.Identifier(table),
            sql.Identifier(columns[0]["name"]),
        )
        self.cursor.execute(query.as_string())
        rows = self.cursor.fetchall()
        if not rows:
            return
        names = [c["name"] for c in columns]
        values = []
        for row in rows:
            literals = [
                "pg_catalog.now()" if (table, name) == ("django_migrations", "applied") else literal
                for name, literal in zip(names, row, strict=True)
            ]
            values.append(f"({', '.join(literals)})")
        overriding = (
            " OVERRIDING SYSTEM VALUE" if any(c["identity"] == "a" for c in columns) else ""
        )
        self.emit(
            "INSERT INTO ",
            SCHEMA,
            f".{_ident(table)} ({', '.join(_ident(n) for n in names)}){overriding} VALUES\n",
            ",\n".join(values),
        )

    def constraints(self, tables, *, foreign: bool):
        rows = self.query(
            "SELECT k.conrelid, c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid), "
            "COALESCE(f.relnamespace = k.connamespace, true) "
            "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
            "LEFT JOIN pg_class f ON f.oid = k.confrelid "
            "WHERE k.connamespace = %s AND k.contypid = 0 "
            "ORDER BY c.relname, k.contype = 'p' DESC, k.conname"
        )
        if not foreign:
            known = {"p", "u", "c", "x"}
            for row in rows:
                if row[3] not in known | {"f"}:
                    raise UnsupportedTemplate(f"Constraint {row[2]!r} of type {row[3]!r}.")
        # Within the schema first; references to other schemas (public.tenants_tenant) last, so
        # the SHARE ROW EXCLUSIVE lock they take on the referenced table is held briefly.
        wanted = [r for r in rows if (r[3] == "f") == foreign]
        if foreign:
            wanted.sort(key=lambda r: (not r[5], r[1], r[2]))
        by_table: dict[str, list] = {}
        for _relid, table, name, _type, definition, _local in wanted:
            clause = [f"ADD CONSTRAINT {_ident(name)} ", *self.relocated(definition)]
            by_table.setdefault(table, []).append(clause)
        if not foreign:
            for table, clauses in by_table.items():
                parts = ["ALTER TABLE ", SCHEMA, f".{_ident(table)} "]
                for i, clause in enumerate(clauses):
                    parts += ([", "] if i else []) + clause
                self.emit(*parts)
        else:
            for _relid, table, name, _type, definition, _local in wanted:
                self.emit(
                    "ALTER TABLE ",
                    SCHEMA,
                    f".{_ident(table)} ADD CONSTRAINT {_ident(name)} ",
                    *self.relocated(definition),
                )

    def indexes(self):
        rows = self.query(
            "SELECT ic.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class ic ON ic.oid = i.indexrelid "
            "WHERE ic.relnamespace = %s AND NOT EXISTS (SELECT 1 FROM pg_constraint k "
            "WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x')) "
            "ORDER BY ic.relname"
        )
        for _name, definition in rows:
            self.emit(*self.relocated(definition))

    def comments(self, tables, columns):
        for oid, table, comment in tables:
            if comment is not None:
                self.emit(
                    "COMMENT ON TABLE ",
                    SCHEMA,
                    f".{_ident(table)} IS {sql.Literal(comment).as_string()}",
                )
            for column in columns.get(oid, []):
                if column["comment"] is not None:
                    self.emit(
                        "COMMENT ON COLUMN ",
                        SCHEMA,
                        f".{_ident(table)}.{_ident(column['name'])} IS "
                        f"{sql.Literal(column['comment']).as_string()}",
                    )
