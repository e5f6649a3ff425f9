"""The upgrade from row mode to schema mode: a row-mode database becomes a schema per tenant.

Reads a row-mode database (SQLite or PostgreSQL, opened read-only: it is never modified) and
writes the configured schema-mode PostgreSQL database:

* ``public`` gets every tenant and domain, the platform's users (staff, tenant owners, members
  of the default tenant, accounts with no membership), all groups, and the default tenant's
  own rows: it is the platform's site;
* each other tenant gets a schema (cloned from a freshly migrated template) with its rows, the
  users who are its members or are referenced by its rows, and their groups and permissions.

Primary keys are kept (a user keeps one id in every schema it is copied to); content types and
permissions are made by the target's migrations and references to them are mapped by natural
key; each table's sequence is set past its highest id. Sessions are not copied: everyone signs
in again.

Each schema is written in one transaction that also records it in ``public.tenancy_upgrade``:
an interrupted run leaves whole schemas or nothing, and a rerun does only what is left. Every
run ends by verifying each schema and table against a fresh read of the source (row count and a
checksum of the rows); any difference is an error that names the schema and table.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json
import sqlite3
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import environ
import psycopg
from django.apps import apps
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.db import models
from django.utils.dateparse import parse_date, parse_datetime, parse_time
from django_tenants.postgresql_backend.base import is_valid_schema_name
from psycopg import sql
from psycopg.types.json import Jsonb

from tenants import postgres
from tenants.conf import is_platform_slug, public_schema, schema_mode
from tenants.models import Domain, Tenant, TenantOwnedModel
from tenants.operations.fleet import public_only_tables

PUBLIC = public_schema()
MARKER_TABLE = "tenancy_upgrade"


class UpgradeError(RuntimeError):
    """The upgrade cannot go on; the message says why and what to do."""


# --- The source: a row-mode database, read-only ----------------------------------------------


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
            path = Path(config["NAME"])
            if not path.is_file():
                raise UpgradeError(f"The source database {path} does not exist.")
            self.vendor = "sqlite"
            # mode=ro: SQLite itself refuses any write to the source.
            self.conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        elif "postgresql" in engine:
            self.vendor = "postgresql"
            try:
                self.conn = postgres.connect_url(url, connect_timeout=10)
            except psycopg.OperationalError as error:
                raise UpgradeError(f"Cannot reach the source database: {error}") from error
            self.conn.read_only = True  # the server refuses any write in these transactions
            # One snapshot for all tables: what is read is a consistent whole.
            self.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
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

    def read(self, table: str, columns: list[str], order_by: str) -> list[tuple]:
        quote = (lambda n: '"' + n.replace('"', '""') + '"') if self.vendor == "sqlite" else None
        if quote:
            names = ", ".join(map(quote, columns))
            query = f"SELECT {names} FROM {quote(table)} ORDER BY {quote(order_by)}"
            return self.conn.execute(query).fetchall()
        query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.Identifier(table),
            sql.Identifier(order_by),
        )
        return self.conn.execute(query).fetchall()


# --- Values: one canonical Python form, whatever the database ------------------------------------


def _normalise(field: models.Field, value):
    """The same Python value whether it came from SQLite (text, 0/1) or PostgreSQL."""
    if value is None:
        return None
    internal = field.get_internal_type()
    if isinstance(field, models.ForeignKey):
        return _normalise(field.target_field, value)
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


def _canonical(value) -> str:
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value.normalize())
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return repr(value)


def checksum(rows: list[tuple]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update("\x1f".join(_canonical(v) for v in row).encode())
        digest.update(b"\x1e")
    return digest.hexdigest()


def _for_write(field: models.Field, value):
    if value is not None and field.get_internal_type() == "JSONField":
        return Jsonb(value)
    return value


# --- Tables and how each one is upgraded ---------------------------------------------------------


@dataclass(frozen=True)
class Table:
    model: type[models.Model]
    fields: tuple[models.Field, ...]

    @property
    def name(self) -> str:
        return self.model._meta.db_table

    @property
    def columns(self) -> list[str]:
        return [f.column for f in self.fields]

    @property
    def pk(self) -> str:
        return self.model._meta.pk.column

    def index(self, column: str) -> int:
        return self.columns.index(column)


def _table(model) -> Table:
    return Table(model, tuple(model._meta.concrete_fields))


def copied_tables() -> dict[str, Table]:
    """Every table the upgrade copies, by name; a table it has no rule for is an error."""
    User = get_user_model()
    skipped = {ContentType, Permission, Session}  # made by migrations / not carried over
    special = {Tenant, Domain, User, Group, LogEntry}
    through = {
        User.groups.through,
        User.user_permissions.through,
        Group.permissions.through,
    }
    tables = {}
    unknown = []
    for model in apps.get_models(include_auto_created=True):
        if model in skipped or model._meta.proxy or not model._meta.managed:
            continue
        if model in special or model in through or issubclass(model, TenantOwnedModel):
            tables[model._meta.db_table] = _table(model)
        elif model._meta.app_label in ("django_tenants",):
            continue
        else:
            unknown.append(f"{model._meta.db_table} ({model._meta.label})")
    if unknown:
        raise UpgradeError(
            "No rule to upgrade " + ", ".join(unknown) + ": make the model a TenantOwnedModel "
            "or teach tenants.operations.upgrade where its rows go."
        )
    return tables


# --- Reading and distributing the source ---------------------------------------------------------


@dataclass
class Plan:
    """Where every source row goes: rows per schema and table (already mapped)."""

    tenants: list[dict]  # id, slug, name, schema (target)
    rows: dict[str, dict[str, list[tuple]]] = field(default_factory=dict)  # schema -> table
    notes: list[str] = field(default_factory=list)

    def schemas(self) -> list[str]:
        return [PUBLIC] + sorted(s for s in self.rows if s != PUBLIC)

    def count(self, schema: str, table: str) -> int:
        return len(self.rows.get(schema, {}).get(table, []))


def read_source(source: Source, tables: dict[str, Table]) -> dict[str, list[tuple]]:
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
        data[name] = [
            tuple(_normalise(f, v) for f, v in zip(table.fields, row, strict=True)) for row in raw
        ]
    return data


def _source_natural_keys(source: Source):
    """Source content type and permission ids -> natural keys."""
    rows = source.read("django_content_type", ["id", "app_label", "model"], "id")
    cts = {row[0]: (row[1], row[2]) for row in rows}
    perms = {
        row[0]: (cts.get(row[1]), row[2])
        for row in source.read("auth_permission", ["id", "content_type_id", "codename"], "id")
    }
    return cts, perms


def _check_source(source: Source, tenants: list[dict]):
    applied = {(a, n) for a, n in source.conn.execute("SELECT app, name FROM django_migrations")}
    from django.db.migrations.loader import MigrationLoader

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
    schemas = source.schemas()
    if any(t["source_schema"] in schemas and t["source_schema"] != PUBLIC for t in tenants):
        raise UpgradeError(
            "The source has tenant schemas already: it is a schema-mode database, not a "
            "row-mode one."
        )


def make_plan(source: Source, target_ids: TargetIds) -> Plan:
    """Read the source and decide where each row goes in the target."""
    tables = copied_tables()
    data = read_source(source, tables)
    User = get_user_model()
    T = {name: t for name, t in tables.items()}
    tenant_t = T[Tenant._meta.db_table]
    default_slug = settings.TENANCY_DEFAULT_TENANT

    tenants, schema_of = [], {}
    for row in data[tenant_t.name]:
        info = dict(zip(tenant_t.columns, row, strict=True))
        is_default = is_platform_slug(info["slug"])
        schema = PUBLIC if is_default else info["schema_name"]
        if not is_default and (not schema or schema == PUBLIC):
            raise UpgradeError(f"Tenant {info['slug']} has no schema name of its own: {schema!r}.")
        if not is_default and not is_valid_schema_name(schema):
            raise UpgradeError(f"Tenant {info['slug']}: {schema!r} is not a valid schema name.")
        schema_of[info["id"]] = schema
        tenants.append(
            {
                "id": info["id"],
                "slug": info["slug"],
                "name": info["name"],
                "schema": schema,
                "source_schema": info["schema_name"],
                "default": is_default,
            }
        )
    if not any(t["default"] for t in tenants):
        raise UpgradeError(f"The source has no default tenant (slug {default_slug!r}).")
    duplicates = {s for s in schema_of.values() if list(schema_of.values()).count(s) > 1}
    if duplicates - {PUBLIC}:
        raise UpgradeError(f"Several tenants share the schema name(s) {sorted(duplicates)}.")
    _check_source(source, tenants)
    plan = Plan(tenants=tenants)
    rows = defaultdict(lambda: defaultdict(list))

    # Tenants: the default one's schema becomes public.
    schema_col = tenant_t.index("schema_name")
    for row in data[tenant_t.name]:
        row = list(row)
        row[schema_col] = schema_of[row[tenant_t.index("id")]]
        rows[PUBLIC][tenant_t.name].append(tuple(row))
    rows[PUBLIC][Domain._meta.db_table] = list(data[Domain._meta.db_table])

    # Tenant-owned rows follow their tenant; remember who owns which object and which users
    # those rows point at.
    owner_of: dict[tuple[str, object], int] = {}
    users_of = defaultdict(set)  # schema -> user ids its rows reference
    for name, table in T.items():
        if not issubclass(table.model, TenantOwnedModel):
            continue
        tenant_col = table.index(table.model._meta.get_field("tenant").column)
        user_cols = [
            table.index(f.column) for f in table.fields if f.is_relation and f.related_model is User
        ]
        _check_relations(table, User)
        for row in data[name]:
            tenant_id = row[tenant_col]
            if tenant_id not in schema_of:
                raise UpgradeError(f"A row of {name} (id {row[0]}) belongs to no tenant.")
            schema = schema_of[tenant_id]
            rows[schema][name].append(row)
            owner_of[(table.model._meta.label_lower, str(row[table.index(table.pk)]))] = tenant_id
            users_of[schema].update(row[c] for c in user_cols if row[c] is not None)

    # Admin log entries go where their object lives.
    src_cts, src_perms = _source_natural_keys(source)
    log_t = T[LogEntry._meta.db_table]
    members = defaultdict(set)  # user id -> schemas it is a member of
    for schema, user_ids in users_of.items():
        for user_id in user_ids:
            members[user_id].add(schema)
    unmapped_cts = 0
    for row in data[log_t.name]:
        entry = dict(zip(log_t.columns, row, strict=True))
        natural = src_cts.get(entry["content_type_id"])
        label = f"{natural[0]}.{natural[1]}" if natural else None
        tenant_id = owner_of.get((label, str(entry["object_id"])))
        if tenant_id is not None:
            schema = schema_of[tenant_id]
        elif natural and _is_tenant_owned(natural):
            # The object is gone: the schema of its author, if the author has just one.
            homes = members.get(entry["user_id"], set()) - {PUBLIC}
            schema = next(iter(homes)) if len(homes) == 1 else PUBLIC
        else:
            schema = PUBLIC
        mapped = list(row)
        ct_col = log_t.index("content_type_id")
        if entry["content_type_id"] is not None:
            mapped[ct_col] = target_ids.content_types.get(natural)
            unmapped_cts += mapped[ct_col] is None
        rows[schema][log_t.name].append(tuple(mapped))
        users_of[schema].add(entry["user_id"])
    if unmapped_cts:
        plan.notes.append(
            f"{unmapped_cts} admin log entries name a model that no longer exists; "
            "their content type is left empty."
        )

    # Users: platform users to public, members and referenced users to their tenants' schemas.
    user_t = T[User._meta.db_table]
    uid = user_t.index("id")
    owners = {row[tenant_t.index("owner_id")] for row in data[tenant_t.name]} - {None}
    in_some_tenant = set().union(*users_of.values()) if users_of else set()
    for row in data[user_t.name]:
        user_id = row[uid]
        info = dict(zip(user_t.columns, row, strict=True))
        platform = (
            info["is_staff"]
            or info["is_superuser"]
            or user_id in owners
            or user_id in users_of[PUBLIC]
            or user_id not in in_some_tenant
        )
        if platform:
            users_of[PUBLIC].add(user_id)
    user_by_id = {row[uid]: row for row in data[user_t.name]}
    for schema, user_ids in users_of.items():
        rows[schema][user_t.name] = [user_by_id[i] for i in sorted(user_ids) if i in user_by_id]

    # Groups and permissions, mapped to the target's permission ids.
    perm_ids = {
        source_id: target_ids.permissions.get((natural_ct, codename))
        for source_id, (natural_ct, codename) in src_perms.items()
    }
    ug_t = T[User.groups.through._meta.db_table]
    up_t = T[User.user_permissions.through._meta.db_table]
    gp_t = T[Group.permissions.through._meta.db_table]
    group_t = T[Group._meta.db_table]
    all_groups = {row[group_t.index("id")] for row in data[group_t.name]}
    groups_of_user = _by_column(data[ug_t.name], ug_t.index("user_id"))
    grants = {
        through.name: _by_column(_mapped_grants(data[through.name], through, perm_ids), column)
        for through, column in ((up_t, up_t.index("user_id")), (gp_t, gp_t.index("group_id")))
    }
    unmapped_perms = sum(
        len(data[t.name]) - sum(len(v) for v in grants[t.name].values()) for t in (up_t, gp_t)
    )
    for schema, user_ids in users_of.items():
        user_groups = _pick(groups_of_user, user_ids)
        group_ids = {r[ug_t.index("group_id")] for r in user_groups}
        if schema == PUBLIC:
            group_ids = all_groups  # every group lives in public
        rows[schema][ug_t.name] = user_groups
        rows[schema][group_t.name] = [r for r in data[group_t.name] if r[0] in group_ids]
        rows[schema][up_t.name] = _pick(grants[up_t.name], user_ids)
        rows[schema][gp_t.name] = _pick(grants[gp_t.name], group_ids)
    if unmapped_perms:
        plan.notes.append(
            f"{unmapped_perms} permission grants name a permission that no longer exists; "
            "they are not copied."
        )
    sessions = source.conn.execute("SELECT count(*) FROM django_session").fetchone()[0]
    if sessions:
        plan.notes.append(f"{sessions} sessions are not copied: everyone signs in again.")

    for tenant in tenants:
        rows.setdefault(tenant["schema"], defaultdict(list))
    public_only = public_only_tables()
    plan.rows = {}
    for schema, by_table in rows.items():
        names = [n for n in T if schema == PUBLIC or n not in public_only]
        stray = [n for n, r in by_table.items() if r and n not in names]
        if stray:
            raise UpgradeError(f"Rows of {', '.join(stray)} would land in tenant schema {schema}.")
        plan.rows[schema] = {n: list(by_table.get(n, [])) for n in names}
    return plan


def _by_column(rows: list[tuple], column: int) -> dict:
    grouped = defaultdict(list)
    for row in rows:
        grouped[row[column]].append(row)
    return grouped


def _pick(grouped: dict, keys) -> list[tuple]:
    """The rows of ``keys``, in primary key (first column) order."""
    return sorted((row for key in keys for row in grouped.get(key, ())), key=lambda r: r[0])


def _mapped_grants(rows: list[tuple], through: Table, perm_ids: dict) -> list[tuple]:
    """Permission grants with the target's permission ids; grants of vanished ones dropped."""
    column = through.index("permission_id")
    mapped = []
    for row in rows:
        target = perm_ids.get(row[column])
        if target is not None:
            mapped.append(row[:column] + (target,) + row[column + 1 :])
    return mapped


def _is_tenant_owned(natural) -> bool:
    try:
        return issubclass(apps.get_model(*natural), TenantOwnedModel)
    except LookupError:
        return False


def _check_relations(table: Table, User):
    for f in table.fields:
        if not f.is_relation or f.name == "tenant":
            continue
        target = f.related_model
        if target is User or issubclass(target, TenantOwnedModel):
            continue
        raise UpgradeError(
            f"{table.name}.{f.column} points at {target._meta.label}; "
            "tenants.operations.upgrade does not know how to carry that reference into a tenant "
            "schema."
        )


# --- The target ----------------------------------------------------------------------------------


@dataclass
class TargetIds:
    """Content type and permission ids of the target (public; tenant schemas copy them)."""

    content_types: dict[tuple[str, str], int]
    permissions: dict[tuple[tuple[str, str], str], int]


def ids_from_models() -> TargetIds:
    """Stand-in ids for a dry run against a target whose migrations have not run yet."""
    cts, perms = {}, {}
    for model in apps.get_models():
        opts = model._meta
        key = (opts.app_label, opts.model_name)
        cts[key] = len(cts) + 1
        for action in opts.default_permissions:
            perms[(key, f"{action}_{opts.model_name}")] = len(perms) + 1
        for codename, _ in opts.permissions:
            perms[(key, codename)] = len(perms) + 1
    return TargetIds(cts, perms)


def read_target_ids(conn, schema: str = PUBLIC) -> TargetIds:
    cts = {
        (a, m): i
        for i, a, m in conn.execute(
            sql.SQL("SELECT id, app_label, model FROM {}").format(
                sql.Identifier(schema, "django_content_type")
            )
        )
    }
    by_id = {i: k for k, i in cts.items()}
    perms = {
        (by_id[ct], codename): i
        for i, ct, codename in conn.execute(
            sql.SQL("SELECT id, content_type_id, codename FROM {}").format(
                sql.Identifier(schema, "auth_permission")
            )
        )
    }
    return TargetIds(cts, perms)


def ensure_marker_table(conn):
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (schema_name text PRIMARY KEY, tenant_slug text, "
            "source text NOT NULL, rows integer NOT NULL, finished_at timestamptz NOT NULL "
            "DEFAULT now())"
        ).format(sql.Identifier(PUBLIC, MARKER_TABLE))
    )


def done_schemas(conn) -> set[str]:
    exists = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL", [f"{PUBLIC}.{MARKER_TABLE}"]
    ).fetchone()[0]
    if not exists:
        return set()
    return {
        row[0]
        for row in conn.execute(
            sql.SQL("SELECT schema_name FROM {}").format(sql.Identifier(PUBLIC, MARKER_TABLE))
        )
    }


def check_target_is_fresh(conn, done: set[str]):
    """A first run needs an empty target: no tenants, no users (migrations only)."""
    if PUBLIC in done:
        return
    tenants = conn.execute("SELECT count(*) FROM public.tenants_tenant").fetchone()[0]
    users = conn.execute("SELECT count(*) FROM public.auth_user").fetchone()[0]
    if tenants or users:
        raise UpgradeError(
            f"The target database already has {tenants} tenants and {users} users that this "
            "upgrade did not write. Upgrade into a new, empty database."
        )


def write_schema(
    conn, plan: Plan, schema: str, tables: dict[str, Table], source_url: str, clone_sql: str | None
):
    """One schema in one transaction: (clone,) copy every table, set sequences, mark done."""
    with conn.transaction():
        if clone_sql:
            conn.execute("SET LOCAL search_path TO public")  # what the template script expects
            conn.execute(clone_sql)
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        total = 0
        for name, table in tables.items():
            data = plan.rows[schema].get(name, [])
            if not data:
                continue
            total += len(data)
            query = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(schema, name),
                sql.SQL(", ").join(map(sql.Identifier, table.columns)),
            )
            with conn.cursor().copy(query) as copy:
                for row in data:
                    copy.write_row(
                        [_for_write(f, v) for f, v in zip(table.fields, row, strict=True)]
                    )
            if isinstance(table.model._meta.pk, models.AutoField):
                conn.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence({}, {}), "
                        "(SELECT max({}) FROM {}) + 1, false)"
                    ).format(
                        sql.Literal(sql.Identifier(schema, name).as_string(conn)),
                        sql.Literal(table.pk),
                        sql.Identifier(table.pk),
                        sql.Identifier(schema, name),
                    )
                )
        tenant = next(
            (
                t
                for t in plan.tenants
                if t["schema"] == schema and (schema != PUBLIC or t["default"])
            ),
            None,
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (schema_name, tenant_slug, source, rows) VALUES (%s, %s, %s, %s)"
            ).format(sql.Identifier(PUBLIC, MARKER_TABLE)),
            [schema, tenant["slug"] if tenant else None, _redacted(source_url), total],
        )


def _redacted(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}@{host}"
    return url


# --- Verification --------------------------------------------------------------------------------


@dataclass
class Mismatch:
    schema: str
    table: str
    expected_rows: int
    actual_rows: int
    detail: str


def verify(conn, plan: Plan, tables: dict[str, Table]) -> list[Mismatch]:
    """Each schema and table against the plan made from a fresh read of the source."""
    problems = []
    public_cts = conn.execute(
        "SELECT id, app_label, model FROM public.django_content_type ORDER BY id"
    ).fetchall()
    for schema in plan.schemas():
        for name, expected in plan.rows[schema].items():
            table = tables[name]
            try:
                raw = conn.execute(
                    sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
                        sql.SQL(", ").join(map(sql.Identifier, table.columns)),
                        sql.Identifier(schema, name),
                        sql.Identifier(table.pk),
                    )
                ).fetchall()
            except psycopg.Error as error:
                problems.append(
                    Mismatch(schema, name, len(expected), -1, postgres.describe_error(error))
                )
                continue
            actual = [
                tuple(_normalise(f, v) for f, v in zip(table.fields, row, strict=True))
                for row in raw
            ]
            if len(actual) != len(expected):
                problems.append(Mismatch(schema, name, len(expected), len(actual), "row count"))
            elif checksum(actual) != checksum(expected):
                problems.append(Mismatch(schema, name, len(expected), len(actual), "checksum"))
        if schema != PUBLIC:
            cts = conn.execute(
                sql.SQL("SELECT id, app_label, model FROM {} ORDER BY id").format(
                    sql.Identifier(schema, "django_content_type")
                )
            ).fetchall()
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


# --- The whole upgrade ---------------------------------------------------------------------------


class Upgrade:
    """One run: ``prepare()`` reads and checks, ``write()`` copies, ``verify()`` compares.

    ``with Upgrade(url) as job:`` holds the source (read-only) and target connections.
    """

    def __init__(self, source_url: str, *, target_exists: bool = True):
        if not schema_mode():
            raise UpgradeError(
                "Run the upgrade in schema mode: TENANCY_MODE=schema DATABASE_URL=<target>."
            )
        self.source_url = source_url
        self.target_exists = target_exists  # False: a dry run for a database not made yet
        self.conn = None
        self.plan: Plan | None = None
        self.todo: list[str] = []
        self.done: set[str] = set()
        self.tables: dict[str, Table] = {}

    def __enter__(self):
        self.source = Source(self.source_url)
        if not self.target_exists:
            return self
        try:
            self.conn = postgres.connect(connect_timeout=10)
        except psycopg.OperationalError as error:
            self.source.close()
            raise UpgradeError(f"Cannot reach the target database: {error}") from error
        return self

    def __exit__(self, *exc):
        if self.conn is not None:
            self.conn.close()
        self.source.close()

    def prepare(self, *, dry_run: bool = False) -> Plan:
        """Read the source, check source and target, decide where every row goes."""
        migrated = (
            self.conn is not None
            and self.conn.execute(
                "SELECT to_regclass('public.django_content_type') IS NOT NULL"
            ).fetchone()[0]
        )
        if not migrated and not dry_run:
            raise UpgradeError("Migrate the target's public schema first.")
        self.done = done_schemas(self.conn) if self.conn is not None else set()
        if migrated:
            check_target_is_fresh(self.conn, self.done)
        self.tables = copied_tables()
        ids = read_target_ids(self.conn) if migrated else ids_from_models()
        self.plan = make_plan(self.source, ids)
        self.todo = [s for s in self.plan.schemas() if s not in self.done]
        if self.conn is not None:
            existing = {
                row[0]
                for row in self.conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", [self.todo]
                )
            }
            clash = sorted((existing - {PUBLIC}) & set(self.todo))
            if clash:
                raise UpgradeError(
                    f"Schemas {', '.join(clash[:5])} exist in the target but were not written "
                    "by this upgrade; upgrade into a new, empty database."
                )
        return self.plan

    def write(
        self,
        on_schema: Callable[[str, Exception | None], None] | None = None,
        *,
        jobs: int = 2,
    ) -> list[str]:
        """Write every schema not written yet, each in one transaction: public first (the
        tenant rows that the other schemas point at), then the tenants, ``jobs`` at a time.

        On a failure or Ctrl-C no new schema is started, the ones being written are finished
        or rolled back, and the error is raised; a rerun does what is left.
        """
        from tenants.provisioning import bulk

        ensure_marker_table(self.conn)
        written: list[str] = []
        lock = threading.Lock()

        def write_one(conn, schema, clone):
            try:
                write_schema(conn, self.plan, schema, self.tables, self.source_url, clone)
            except psycopg.Error as error:
                if on_schema:
                    on_schema(schema, error)
                raise UpgradeError(
                    f"Writing schema {schema} failed: {postgres.describe_error(error)}. "
                    "Nothing of it was kept; other schemas are complete. Rerun to go on."
                ) from error
            with lock:
                written.append(schema)
            if on_schema:
                on_schema(schema, None)

        if PUBLIC in self.todo:
            write_one(self.conn, PUBLIC, None)
        tenant_schemas = [s for s in self.todo if s != PUBLIC]
        if not tenant_schemas:
            return written
        blueprint = bulk.build_blueprint()
        queue = list(reversed(tenant_schemas))
        stop = threading.Event()
        connections = [postgres.connect() for _ in range(max(1, min(jobs, len(queue))))]

        def worker(conn):
            while not stop.is_set():
                with lock:
                    if not queue:
                        return
                    schema = queue.pop()
                try:
                    write_one(conn, schema, blueprint.sql_for(schema))
                except BaseException:
                    stop.set()
                    raise

        try:
            with ThreadPoolExecutor(len(connections)) as pool:
                futures = [pool.submit(worker, conn) for conn in connections]
                try:
                    for future in futures:
                        future.result()
                except BaseException:
                    stop.set()
                    for conn in connections:
                        conn.cancel_safe()  # a write in progress stops and rolls back
                    raise
        finally:
            for conn in connections:
                conn.close()
        return written

    def verify(self) -> list[Mismatch]:
        """Compare every schema and table with a fresh read of the source."""
        fresh = Source(self.source_url)
        try:
            expected = make_plan(fresh, read_target_ids(self.conn))
        finally:
            fresh.close()
        self.plan = expected
        return verify(self.conn, expected, self.tables)
