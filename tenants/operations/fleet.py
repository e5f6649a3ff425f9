"""Fleet migrations: the public schema, then every tenant schema, in parallel and fast.

Where django-tenants' ``migrate_schemas`` spends its time, per schema: a fresh ``migrate``
command (system checks, migration graph built from the schema's ``django_migrations``), the
project state rendered again, the SQL generated again, ``post_migrate`` run again (content
types and permissions queried model by model). Across a fleet nearly all of that is the same
for every schema. Here it is done once:

1. every schema's applied migrations are read in a few queries (a digest per schema, then the
   full list once per distinct digest), and schemas in the same state form a *group*;
2. per group the plan is computed from one migration graph, and the SQL of the pending
   migrations is collected once by Django's own schema editor (``collect_sql``, as
   ``sqlmigrate`` does) against one schema of the group; content types and permissions that
   ``post_migrate`` would create become two set-based INSERTs;
3. each schema then gets that script, its ``django_migrations`` rows included, as one
   transaction with ``SET LOCAL search_path`` to the schema alone (references to public-only
   tables are schema-qualified), sent in one round trip by a pool of workers.

A group whose plan cannot be written as SQL (RunPython, non-atomic migrations, model renames,
post_migrate handlers of other apps, squashed migrations) goes through Django's normal executor
(django-tenants' ``run_migrations``), still in parallel; so does a schema whose precomputed
script fails, before it is reported as failed. Each schema is one transaction: a failure leaves
it untouched and a rerun applies only what is left.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.apps import apps as global_apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations import RenameModel, RunPython
from django.db.migrations.exceptions import InconsistentMigrationHistory
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ProjectState
from django.db.models.signals import post_migrate, pre_migrate
from psycopg import sql

from tenants import parallel, postgres
from tenants.conf import public_schema
from tenants.internals import all_permissions, live_receivers

STATE_QUERY_CHUNK = 250  # schemas per UNION ALL query when reading migration states

# Signal handlers whose effect the precomputed path reproduces (or, for renames, avoids).
_KNOWN_POST_MIGRATE = {
    "django.contrib.contenttypes.management.create_contenttypes",
    "django.contrib.auth.management.create_permissions",
}
_KNOWN_PRE_MIGRATE = {
    "django.contrib.contenttypes.management.inject_rename_contenttypes_operations"
}


class FleetError(RuntimeError):
    """The fleet cannot be migrated at all (e.g. conflicting migrations)."""


Key = tuple[str, str]


@dataclass
class Group:
    """Schemas whose ``django_migrations`` hold the same set, and what they need."""

    applied: frozenset[Key] | None  # None: the schema has no django_migrations table yet
    schemas: list[str] = field(default_factory=list)
    plan: list = field(default_factory=list)  # Migration objects, forwards
    script: str | None = None  # precomputed SQL; None means Django's executor
    reason: str = ""  # why Django's executor, when it is used

    @property
    def label(self) -> str:
        return "precomputed SQL" if self.script is not None else "Django executor"


@dataclass
class SchemaResult:
    schema: str
    ok: bool
    how: str  # "sql", "executor", "missing"
    seconds: float
    error: str = ""


@dataclass
class FleetPlan:
    groups: list[Group]
    up_to_date: list[str]
    missing: list[str]  # tenants whose schema does not exist
    alias: str = DEFAULT_DB_ALIAS  # the database (cell) these schemas are in

    @property
    def pending(self) -> int:
        return sum(len(g.schemas) for g in self.groups)


# --- Reading the fleet's state -------------------------------------------------------------------


def read_applied(conn, schemas: list[str]) -> dict[str, frozenset[Key] | None]:
    """Applied migrations of each existing schema (None: no django_migrations table).

    A digest per schema first, in a few UNION ALL queries, then the full list once per distinct
    digest: a thousand schemas in the same state cost a thousand small scans and one list.
    """
    rows = conn.execute(
        "SELECT n.nspname, c.oid IS NOT NULL FROM pg_namespace n LEFT JOIN pg_class c "
        "ON c.relnamespace = n.oid AND c.relname = 'django_migrations' AND c.relkind = 'r' "
        "WHERE n.nspname = ANY(%s)",
        [schemas],
    ).fetchall()
    result: dict[str, frozenset[Key] | None] = {name: None for name, has in rows if not has}
    with_table = [name for name, has in rows if has]
    digests: dict[str, str] = {}
    for start in range(0, len(with_table), STATE_QUERY_CHUNK):
        chunk = with_table[start : start + STATE_QUERY_CHUNK]
        query = sql.SQL(" UNION ALL ").join(
            sql.SQL(
                "SELECT {}::text, md5(coalesce(string_agg(app || '.' || name, ',' "
                "ORDER BY app, name), '')) FROM {}"
            ).format(sql.Literal(name), sql.Identifier(name, "django_migrations"))
            for name in chunk
        )
        digests.update(conn.execute(query).fetchall())
    by_digest: dict[str, frozenset[Key]] = {}
    for name in with_table:
        digest = digests[name]
        if digest not in by_digest:
            by_digest[digest] = frozenset(
                conn.execute(
                    sql.SQL("SELECT app, name FROM {}").format(
                        sql.Identifier(name, "django_migrations")
                    )
                ).fetchall()
            )
        result[name] = by_digest[digest]
    return result


# --- Planning ------------------------------------------------------------------------------------


def load_graph() -> MigrationLoader:
    """The migration graph from disk only (no database): built once for the whole fleet."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    conflicts = loader.detect_conflicts()
    if conflicts:
        names = "; ".join(f"{app}: {', '.join(sorted(m))}" for app, m in conflicts.items())
        raise FleetError(
            f"Conflicting migrations ({names}); run 'manage.py makemigrations --merge' first."
        )
    return loader


def forwards_plan(loader: MigrationLoader, applied: Iterable[Key]) -> list:
    """What ``migrate`` would apply (all leaf nodes as targets) given ``applied``."""
    done = {key for key in applied if key in loader.graph.nodes}
    for key in done:
        for parent in loader.graph.node_map[key].parents:
            if parent not in done:
                raise InconsistentMigrationHistory(
                    f"Migration {key[0]}.{key[1]} is applied before its dependency "
                    f"{parent[0]}.{parent[1]}."
                )
    plan = []
    for target in loader.graph.leaf_nodes():
        for key in loader.graph.forwards_plan(target):
            if key not in done:
                done.add(key)
                plan.append(loader.graph.nodes[key])
    return plan


def _state_before(loader: MigrationLoader, applied: Iterable[Key]) -> ProjectState:
    """The project state with ``applied`` migrations, as MigrationExecutor builds it."""
    state = ProjectState(real_apps=loader.unmigrated_apps)
    done = set(applied)
    for target in loader.graph.leaf_nodes():
        for key in loader.graph.forwards_plan(target):
            if key in done:
                done.discard(key)
                loader.graph.nodes[key].mutate_state(state, preserve=False)
    return state


def _handler_name(receiver) -> str:
    return f"{receiver.__module__}.{receiver.__qualname__}"


def _why_not_precomputable(loader: MigrationLoader, plan: list) -> str:
    """Why ``plan`` needs Django's executor, or "" if its SQL can be computed once."""
    if loader.replacements:
        return "squashed migrations in the project"
    signals = (("post_migrate", post_migrate, _KNOWN_POST_MIGRATE),
               ("pre_migrate", pre_migrate, _KNOWN_PRE_MIGRATE))  # fmt: skip
    for name, signal, known in signals:
        for receiver in live_receivers(signal):
            if _handler_name(receiver) not in known:
                return f"{name} handler {_handler_name(receiver)} runs Python"
    for migration in plan:
        name = f"{migration.app_label}.{migration.name}"
        if not migration.atomic:
            return f"{name} is not atomic"
        for operation in migration.operations:
            if isinstance(operation, RunPython):
                if operation.code is not RunPython.noop:
                    return f"{name} runs Python ({operation.describe()})"
            elif isinstance(operation, RenameModel):
                return f"{name} renames a model (content types follow in Python)"
            elif not operation.reduces_to_sql:
                return f"{name}: {operation.describe()} cannot be written as SQL"
    return ""


def public_only_tables() -> set[str]:
    """Tables that exist in the public schema only (apps in SHARED_APPS but not TENANT_APPS)."""
    from django.apps import AppConfig

    tenant_labels = {AppConfig.create(entry).label for entry in settings.TENANT_APPS}
    return {
        model._meta.db_table
        for model in global_apps.get_models(include_auto_created=True)
        if model._meta.app_label not in tenant_labels
    }


def _collect_sql(
    loader: MigrationLoader, group: Group, representative: str, alias: str = DEFAULT_DB_ALIAS
) -> str:
    """The SQL of ``group.plan``, collected once against ``representative``'s schema."""
    connection = connections[alias]
    public_only = public_only_tables()
    state = _state_before(loader, group.applied or ())
    rows_before = _post_migrate_rows(state)
    statements: list[str] = []
    connection.set_schema(representative, include_public=False)
    try:
        if group.applied is None:
            with connection.schema_editor(collect_sql=True) as editor:
                editor.create_model(MigrationRecorder.Migration)
            statements.extend(editor.collected_sql)
        for migration in group.plan:
            with connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
                _qualify_public_tables(editor, public_only)
                state = migration.apply(state, editor, collect_sql=True)
            statements.extend(editor.collected_sql)
    finally:
        connection.set_schema_to_public()
    statements = [s for s in statements if s and not s.startswith("--")]
    statements.append(_post_migrate_sql(rows_before, _post_migrate_rows(state)))
    statements.append(_record_sql(group.plan))
    script = "\n".join(s for s in statements if s)
    if re.search(rf'(?<![\w"])"?{re.escape(representative)}"?\.', script):
        raise FleetError(f"the SQL names schema {representative!r}; it cannot be reused")
    return script


def _qualify_public_tables(editor, public_only: set[str]) -> None:
    """Quote public-only table names as "public"."name": a tenant's search_path is itself only,
    so a foreign key to tenants_tenant must say where that table is."""
    quote = editor.quote_name

    def quote_name(name):
        if name in public_only:
            return f"{quote(public_schema())}.{quote(name)}"
        return quote(name)

    editor.quote_name = quote_name


def _post_migrate_rows(state: ProjectState) -> tuple[list, list]:
    """Content types and permissions that contenttypes' and auth's post_migrate handlers
    create for ``state``, in their order (so in a fresh table, with their ids)."""
    content_types, permissions = [], []
    for app_config in global_apps.get_app_configs():
        if app_config.models_module is None:
            continue
        try:
            state_app = state.apps.get_app_config(app_config.label)
        except LookupError:
            continue
        for model in state_app.get_models():
            opts = model._meta
            content_types.append((opts.app_label, opts.model_name))
            for codename, name in all_permissions(opts):
                permissions.append((opts.app_label, opts.model_name, codename, name))
    return content_types, permissions


def _post_migrate_sql(before: tuple[list, list], after: tuple[list, list]) -> str:
    """What post_migrate would add after the plan, as two set-based statements.

    Only rows the plan brings (``after`` minus ``before``), inserted where missing, in the
    handlers' order: the same rows and ids as a normal migrate of a schema in the same state.
    """
    content_types = [row for row in after[0] if row not in set(before[0])]
    permissions = [row for row in after[1] if row not in set(before[1])]
    parts = []
    if content_types:
        values = sql.SQL(", ").join(
            sql.SQL("({}, {}, {})").format(sql.Literal(i), sql.Literal(a), sql.Literal(m))
            for i, (a, m) in enumerate(content_types)
        )
        parts.append(
            sql.SQL(
                "INSERT INTO django_content_type (app_label, model) "
                "SELECT v.app_label, v.model FROM (VALUES {}) AS v(ord, app_label, model) "
                "WHERE NOT EXISTS (SELECT 1 FROM django_content_type c "
                "WHERE c.app_label = v.app_label AND c.model = v.model) ORDER BY v.ord;"
            ).format(values)
        )
    if permissions:
        values = sql.SQL(", ").join(
            sql.SQL("({}, {}, {}, {}, {})").format(*map(sql.Literal, (i, *p)))
            for i, p in enumerate(permissions)
        )
        parts.append(
            sql.SQL(
                "INSERT INTO auth_permission (name, content_type_id, codename) "
                "SELECT v.name, c.id, v.codename "
                "FROM (VALUES {}) AS v(ord, app_label, model, codename, name) "
                "JOIN django_content_type c ON c.app_label = v.app_label AND c.model = v.model "
                "WHERE NOT EXISTS (SELECT 1 FROM auth_permission p "
                "WHERE p.content_type_id = c.id AND p.codename = v.codename) ORDER BY v.ord;"
            ).format(values)
        )
    return "\n".join(p.as_string() for p in parts)


def _record_sql(plan: list) -> str:
    if not plan:
        return ""
    values = sql.SQL(", ").join(
        sql.SQL("({}, {}, now())").format(sql.Literal(m.app_label), sql.Literal(m.name))
        for m in plan
    )
    return (
        sql.SQL("INSERT INTO django_migrations (app, name, applied) VALUES {};")
        .format(values)
        .as_string()
    )


def plan_fleet(
    schemas: list[str], *, precompute: bool = True, alias: str = DEFAULT_DB_ALIAS
) -> FleetPlan:
    """Group ``schemas`` (of database ``alias``: a cell) by migration state and decide, per
    group, how to migrate it."""
    loader = load_graph()
    with postgres.connect(alias) as conn:
        states = read_applied(conn, schemas)
    missing = [s for s in schemas if s not in states]
    by_state: dict[frozenset[Key] | None, Group] = {}
    for schema in schemas:
        if schema in states:
            applied = states[schema]
            by_state.setdefault(applied, Group(applied=applied)).schemas.append(schema)
    groups, up_to_date = [], []
    for group in by_state.values():
        try:
            group.plan = forwards_plan(loader, group.applied or ())
        except InconsistentMigrationHistory as error:
            group.reason = str(error)
            groups.append(group)  # Django's executor will report it per schema
            continue
        if not group.plan and group.applied is not None:
            up_to_date.extend(group.schemas)
            continue
        group.reason = (
            "precomputation turned off"
            if not precompute
            else _why_not_precomputable(loader, group.plan)
        )
        if not group.reason:
            try:
                group.script = _collect_sql(loader, group, group.schemas[0], alias)
            except Exception as error:  # anything: this group takes the normal path instead
                group.reason = f"SQL could not be precomputed: {postgres.describe_error(error)}"
        groups.append(group)
    return FleetPlan(groups=groups, up_to_date=up_to_date, missing=missing, alias=alias)


# --- Applying ------------------------------------------------------------------------------------


def _migrate_schema(
    item: tuple[str, Group, str], conn: parallel.WorkerConnection, lock_timeout: str | None
) -> SchemaResult:
    """Runs in a worker: one schema, the precomputed script first, Django's executor else."""
    schema, group, alias = item
    started = time.perf_counter()
    first_error = ""
    if group.script is not None:
        try:
            script = postgres.in_schema(schema, group.script, lock_timeout, wait_for_disk=False)
            postgres.run_script(_worker_connection(alias, conn), script)
            return SchemaResult(schema, True, "sql", time.perf_counter() - started)
        except Exception as error:
            first_error = postgres.describe_error(error)
    try:
        run_django_executor(schema, alias=alias)
    except Exception as error:
        message = postgres.describe_error(error)
        if first_error and first_error != message:
            message = f"{message} (precomputed SQL: {first_error})"
        return SchemaResult(schema, False, "executor", time.perf_counter() - started, message)
    return SchemaResult(schema, True, "executor", time.perf_counter() - started)


def _migrate_options(verbosity: int = 0) -> dict:
    from django.core.management.commands.migrate import Command as Migrate

    parser = Migrate().create_parser("manage.py", "migrate")
    return vars(parser.parse_args(["--noinput", "--skip-checks", f"--verbosity={verbosity}"]))


_cell_connections: dict = {}  # a worker's own connections to cells other than the control one


def _worker_connection(alias: str, conn: parallel.WorkerConnection):
    """The worker's connection to ``alias``: its own one for the control database, one more
    per cell, opened on first use (items of every cell share one pool of workers)."""
    if alias == DEFAULT_DB_ALIAS:
        return conn.get()
    cell = _cell_connections.get(alias)
    if cell is None or cell.closed:
        cell = _cell_connections[alias] = postgres.connect(alias)
    return cell


def run_django_executor(schema: str, verbosity: int = 0, alias: str = DEFAULT_DB_ALIAS) -> None:
    """Migrate one schema of database ``alias`` exactly as django-tenants' migrate_schemas does
    (its executor)."""
    from django_tenants.migration_executors.base import run_migrations

    options = {**_migrate_options(verbosity), "database": alias}
    try:
        run_migrations([], options, "fleet", schema)
    finally:
        connections[alias].set_schema_to_public()


def public_needs_migrating(alias: str = DEFAULT_DB_ALIAS) -> bool:
    with postgres.connect(alias) as conn:
        applied = read_applied(conn, [public_schema()]).get(public_schema())
    if applied is None:
        return True
    return bool(forwards_plan(load_graph(), applied))


def apply_plan(
    plan: FleetPlan | list[FleetPlan],
    *,
    jobs: int,
    lock_timeout: str | None = None,
    on_result: Callable[[SchemaResult], None] | None = None,
) -> list[SchemaResult]:
    """Migrate every schema of ``plan`` (or of several, one per cell: all in one pool, so the
    cells are migrated in parallel) with ``jobs`` worker processes; one result each.

    Processes, not threads: Django's executor path is CPU-bound Python.
    """
    plans = plan if isinstance(plan, list) else [plan]
    results: list[SchemaResult] = []

    def report(result: SchemaResult):
        results.append(result)
        if on_result is not None:
            on_result(result)

    def report_outcome(outcome: parallel.Outcome):
        schema = outcome.item[0]
        report(outcome.result or SchemaResult(schema, False, "executor", 0.0, str(outcome.error)))

    for one in plans:
        for schema in one.missing:
            report(SchemaResult(schema, False, "missing", 0.0, "the schema does not exist"))
    items = [
        (schema, group, one.alias)
        for one in plans
        for group in one.groups
        for schema in group.schemas
    ]
    if not items:
        return results
    work = functools.partial(_migrate_schema, lock_timeout=lock_timeout)
    parallel.run(items, work, jobs=jobs, processes=True, on_done=report_outcome)
    for alias in sorted({alias for _schema, _group, alias in items}):
        _flush_commits(alias)
    return results


def _flush_commits(alias: str = DEFAULT_DB_ALIAS) -> None:
    """Schemas are committed with synchronous_commit off (no wait for the disk per schema);
    one synchronous commit afterwards puts all of them on disk before we report success."""
    with postgres.connect(alias) as conn:
        conn.execute("BEGIN; SELECT txid_current(); COMMIT;")
