"""The source: a row-mode database, read-only, and its values in one canonical Python form."""

from __future__ import annotations

import datetime
import decimal
import json
import sqlite3
import uuid
from pathlib import Path

import environ
import psycopg
from django.db import models
from django.utils.dateparse import parse_date, parse_datetime, parse_time
from psycopg import sql

from tenants import postgres, rls
from tenants.conf import public_schema
from tenants.operations.upgrade.errors import UpgradeError
from tenants.operations.upgrade.tables import Table


class Source:
    """Read-only access to a row-mode database given by a DATABASE_URL-style URL."""

    def __init__(self, url: str):
        self.url = url
        try:
            config = environ.Env.db_url_config(url)
        except Exception as error:
            raise UpgradeError(f"--source {url!r} is not a database URL: {error}") from error
        engine = config["ENGINE"]
        if "sqlite" in engine:
            self.vendor = "sqlite"
            self.conn = _open_sqlite(Path(config["NAME"]))
        elif "postgresql" in engine:
            self.vendor = "postgresql"
            self.conn = _open_postgresql(url)
        else:
            raise UpgradeError(f"The source must be SQLite or PostgreSQL, not {engine}.")

    def close(self):
        self.conn.close()

    def tables(self) -> set[str]:
        if self.vendor == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        return {row[0] for row in self.conn.execute(query).fetchall()}

    def schemas(self) -> set[str]:
        if self.vendor == "sqlite":
            return set()
        return {row[0] for row in self.conn.execute("SELECT nspname FROM pg_namespace")}

    def applied_migrations(self) -> set[tuple[str, str]]:
        return {
            (app, name)
            for app, name in self.conn.execute("SELECT app, name FROM django_migrations")
        }

    def count(self, table: str) -> int:
        """Rows in ``table``, a name of the code's own (not quoted)."""
        return self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def read(self, table: str, columns: list[str], order_by: str) -> list[tuple]:
        if self.vendor == "sqlite":
            quote = _sqlite_quote
            names = ", ".join(map(quote, columns))
            query = f"SELECT {names} FROM {quote(table)} ORDER BY {quote(order_by)}"
            return self.conn.execute(query).fetchall()
        return self.conn.execute(select_sql(sql.Identifier(table), columns, order_by)).fetchall()


def _open_sqlite(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise UpgradeError(f"The source database {path} does not exist.")
    # mode=ro: SQLite itself refuses any write to the source.
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def _open_postgresql(url: str) -> psycopg.Connection:
    try:
        conn = postgres.connect_url(url, connect_timeout=10)
    except psycopg.OperationalError as error:
        raise UpgradeError(f"Cannot reach the source database: {error}") from error
    conn.read_only = True  # the server refuses any write in these transactions
    # One snapshot for all tables: what is read is a consistent whole.
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    if not rls.sees_every_tenant(conn.cursor()):
        user = conn.info.user
        conn.close()
        raise UpgradeError(
            f"The source is read as {user!r}, which row-level security keeps from other "
            "tenants' rows: give --source the row-mode site's owner URL (its DATABASE_URL), "
            "not the application's."
        )
    return conn


def _sqlite_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def select_sql(table: sql.Identifier, columns: list[str], order_by: str) -> sql.Composed:
    """``SELECT columns FROM table ORDER BY order_by`` on PostgreSQL, every name quoted."""
    return sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), table, sql.Identifier(order_by)
    )


def read_source(source: Source, tables: dict[str, Table]) -> dict[str, list[tuple]]:
    """Every row of every table, normalised, in primary key order."""
    present = source.tables()
    missing = [name for name in tables if name not in present]
    if missing:
        raise UpgradeError(
            f"The source has no table {', '.join(sorted(missing))}: migrate it with this "
            "version of the code first (in row mode)."
        )
    data = {}
    for name, table in tables.items():
        try:
            raw = source.read(name, table.columns, table.pk)
        except (sqlite3.Error, psycopg.Error) as error:
            raise UpgradeError(f"Cannot read {name} from the source: {error}") from error
        data[name] = normalised(table, raw)
    return data


def natural_keys(source: Source):
    """Source content type and permission ids -> natural keys."""
    rows = source.read("django_content_type", ["id", "app_label", "model"], "id")
    cts = {row[0]: (row[1], row[2]) for row in rows}
    perms = {
        row[0]: (cts.get(row[1]), row[2])
        for row in source.read("auth_permission", ["id", "content_type_id", "codename"], "id")
    }
    return cts, perms


def check_source(source: Source, tenants: list[dict]):
    """The source is a row-mode database migrated by this version of the code."""
    from django.db.migrations.loader import MigrationLoader

    applied = source.applied_migrations()
    loader = MigrationLoader(None, ignore_no_migrations=True)
    missing = [
        f"{app}.{name}"
        for app, name in loader.graph.leaf_nodes()
        if (app, name) not in applied and app != "django_tenants"
    ]
    if missing:
        raise UpgradeError(
            f"The source is not fully migrated (missing {', '.join(missing)}). Run "
            "'manage.py migrate' on it in row mode with this version of the code first."
        )
    schemas = source.schemas() - {public_schema()}
    if any(t["source_schema"] in schemas for t in tenants):
        raise UpgradeError(
            "The source has tenant schemas already: it is a schema-mode database, not a "
            "row-mode one."
        )


# --- Values: one canonical Python form, whatever the database ------------------------------------


def normalised(table: Table, rows: list[tuple]) -> list[tuple]:
    return [tuple(normalise(f, v) for f, v in zip(table.fields, row, strict=True)) for row in rows]


def normalise(field: models.Field, value):
    """The same Python value whether it came from SQLite (text, 0/1) or PostgreSQL."""
    if value is None:
        return None
    internal = field.get_internal_type()
    if isinstance(field, models.ForeignKey):
        return normalise(field.target_field, value)
    if internal == "DateTimeField":
        if isinstance(value, str):
            value = parse_datetime(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value.astimezone(datetime.UTC)
    if internal == "DateField" and isinstance(value, str):
        return parse_date(value)
    if internal == "TimeField" and isinstance(value, str):
        return parse_time(value)
    if internal in ("BooleanField", "NullBooleanField"):
        return bool(value)
    if internal == "DecimalField":
        return decimal.Decimal(str(value))
    if internal == "UUIDField" and not isinstance(value, uuid.UUID):
        return uuid.UUID(str(value))
    if internal == "JSONField":
        return json.loads(value) if isinstance(value, str) else value
    if internal in ("BinaryField",):
        return bytes(value)
    return value
