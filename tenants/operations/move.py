"""Moving a tenant to another cell: ``manage.py tenants move TENANT --to CELL``. Schema mode here;
row mode (with row-level security) runs the same lock, switch and reruns with ``move_row``'s steps.

Steps (docs/cells.md, "Moving a tenant"):

1. **Bulk copy, unfrozen.** The tenant's archive (``transfer.export_tenant``) from its cell,
   an empty migrated schema on the target cell (``create_tenant_schema``: spare or template
   script), ``import_tenant(keep_identity=True)`` into it, verified against the export's
   checksums. The site serves reads and writes from its old cell all along.
2. **Freeze.** On the source cell, one transaction takes ``LOCK TABLE ... IN EXCLUSIVE MODE``
   on every table of the tenant's schema: writers wait, readers do not. What changed since the
   archive is copied over (rows whose hash differs, by primary key, with ``COPY``), sequences
   set, and every table compared on both servers (row count and hash) before the target
   commits.
3. **Seal, then switch.** Still holding the lock, the source transaction adds a trigger to
   every table that refuses any write (SQLSTATE 55P03: the site answers 503 with
   Retry-After) and marks the schema (``COMMENT ON SCHEMA``), then commits. Only then is
   ``Tenant.cell`` switched on the control database (with the resolver's generation), which
   ends the freeze. A writer that waited on the lock, or a server process that still resolves
   the tenant to its old cell, hits the seal: its write fails, never lands in the old copy.
4. **Remove the old copy**, after ``TENANCY_RESOLVER_REVALIDATE_SECONDS`` (every process has
   seen the new cell by then; until then stale readers read the sealed copy).

Rerunning the command after any failure or a SIGKILL reads where the move stands from the
servers themselves: a sealed old copy on the tenant's current cell means the target is complete
(step 4 or 3 is finished); an unsealed schema of the tenant on the target cell is a leftover of
step 1 or 2 (dropped, the move starts over); a sealed copy on a cell the tenant is no longer
mapped to is removed.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction
from psycopg import sql

from tenants import cells, postgres, rls
from tenants.cellconfig import CONTROL, alias_for_cell
from tenants.conf import schema_mode
from tenants.models import Tenant
from tenants.runtime.context import no_tenant
from tenants.runtime.unavailable import MOVED_AWAY

SEAL_MARK = "tenancy: moved to cell "  # COMMENT ON SCHEMA of a sealed old copy
SEAL_TRIGGER = "tenancy_moved_away"
LOCK_TRY = "100ms"  # one try at locking every table (well under deadlock_timeout, 1 s)
LOCK_GIVE_UP_SECONDS = 10
MOVE_LOCK_CLASS = 0x6D6F7665  # the advisory lock's first key: "move"
IN_FLIGHT_SECONDS = 1.0  # a request that resolved the old cell just before the switch ends
PAUSE_ENV = "TENANCY_MOVE_PAUSE_AT"  # "step:seconds": tests stop the mover at a step


class MoveError(RuntimeError):
    """The move cannot be made or did not finish; the tenant serves from its old cell."""


@dataclass
class MoveResult:
    tenant: str
    source: str
    target: str
    checksums: dict[str, dict] = field(default_factory=dict)  # archive: label -> rows, checksum
    tables: dict[str, tuple[int, str]] = field(default_factory=dict)  # final: rows, md5
    delta_rows: int = 0
    freeze_started: float | None = None
    freeze_seconds: float = 0.0
    total_seconds: float = 0.0
    resumed: str = ""  # what a rerun found and did
    removed: str = ""


Step = Callable[[str], None]


def move_tenant(tenant: Tenant, to: str, *, on_step: Step | None = None) -> MoveResult:
    """Move ``tenant``'s data to cell ``to`` (see the module's docstring); ``on_step`` is told
    each step's name as it starts. Raises ``MoveError`` with the tenant on its old cell."""
    target = _check(tenant, to)
    with _one_move_at_a_time(tenant):
        return _move(tenant, target, _stepper(on_step))


@contextmanager
def _one_move_at_a_time(tenant: Tenant):
    """A transaction-level advisory lock on the control database, in a transaction of its own
    held open for the move's length: a second ``tenants move`` of the same tenant is refused,
    and the lock goes when the mover's connection does. Not a session-level lock: behind a
    transaction pooler (PgBouncer) an open transaction keeps its server connection, a session
    does not (docs/operations.md, "Behind PgBouncer")."""
    with postgres.connect(DEFAULT_DB_ALIAS) as conn, conn.transaction():
        key = [MOVE_LOCK_CLASS, tenant.pk]
        if not conn.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", key).fetchone()[0]:
            raise MoveError(f"Another move of {tenant.slug} is running.")
        yield


def _move(tenant: Tenant, target: str, step: Step) -> MoveResult:
    started = time.perf_counter()
    steps = _steps()
    source = tenant.cell or CONTROL
    result = MoveResult(tenant.slug, source, target)
    result.resumed = steps.recover(tenant, target, step)
    tenant.refresh_from_db()
    source = result.source = tenant.cell or CONTROL
    if source != target:
        sealed_for = steps.sealed_for(source, tenant)
        if sealed_for is None:
            try:
                result.checksums = steps.bulk_copy(tenant, source, target, step)
                steps.freeze_sync_and_seal(tenant, source, target, result, step)
            except BaseException:
                steps.drop_unsealed_copy(tenant, source, target)
                raise
        elif sealed_for != target:
            raise MoveError(
                f"{tenant.slug} is half-way through a move to {sealed_for}: finish that one "
                f"first (tenants move {tenant.slug} --to {sealed_for})."
            )
        else:
            result.resumed = "resumed after the seal: the copy on the target is complete"
        try:
            _switch(tenant, source, target, result, step)
        except Exception as error:
            raise MoveError(
                f"The copy on {target} is complete and the old copy sealed, but the switch "
                f"failed ({error}); {tenant.slug}'s writes answer 503 until "
                f"'tenants move {tenant.slug} --to {target}' is run again."
            ) from error
    result.removed = _remove_old_copies(tenant, step, steps)
    result.total_seconds = time.perf_counter() - started
    return result


class _SchemaSteps:
    """The schema-mode steps (this module); row mode's are ``move_row``'s, same signatures."""

    @staticmethod
    def recover(tenant, target, step):
        return _recover(tenant, target, step)

    @staticmethod
    def sealed_for(cell, tenant):
        return _sealed_for(cell, tenant.schema_name)

    @staticmethod
    def bulk_copy(tenant, source, target, step):
        return _bulk_copy(tenant, source, target, step)

    @staticmethod
    def freeze_sync_and_seal(tenant, source, target, result, step):
        _freeze_sync_and_seal(tenant, source, target, result, step)

    @staticmethod
    def drop_unsealed_copy(tenant, source, target):
        _drop_unsealed_copy(tenant, source, target)

    REMOVED = "dropped the old copy on {}"

    @staticmethod
    def old_copy_on(cell, tenant):
        with _connect(cell) as conn:
            found = _schema_comment(conn, tenant.schema_name)
        return found is not None and _sealed(found)

    @staticmethod
    def remove_old_copy(cell, tenant):
        _drop_schema(cell, tenant.schema_name)


def _steps():
    if schema_mode():
        return _SchemaSteps
    from tenants.operations import move_row

    return move_row


# --- Checks and reruns ------------------------------------------------------------------------


def _check(tenant: Tenant, to: str) -> str:
    if not schema_mode() and not (rls.enabled() and cells.configured()):
        raise MoveError(
            "Moves are for schema mode, and row mode with row-level security on cells "
            "(TENANCY_CELLS)."
        )
    if tenant.is_default:
        raise MoveError("The platform's own site stays on the control database.")
    try:
        target = cells.check_cell(to)
    except cells.UnknownCell as problem:
        raise MoveError(str(problem)) from None
    health = cells.health(target)
    if not health.reachable:
        raise MoveError(f"Cell {target!r} is not reachable: {health.error}")
    return target


def _recover(tenant: Tenant, target: str, step: Step) -> str:
    """Put an interrupted move back on its feet: a schema of the tenant on the target cell,
    which it is not mapped to, is never served: an unfinished copy (the move starts over) or
    an old sealed copy (removed). A sealed source is resumed by the caller."""
    current = tenant.cell or CONTROL
    if current == target:
        return "already on the target cell"
    if _sealed_for(current, tenant.schema_name) == target:
        return ""  # the copy on the target is complete and the source sealed: resume
    with _connect(target) as conn:
        leftover = _schema_comment(conn, tenant.schema_name)
    if leftover is None:
        return ""
    step("drop-leftover")
    _drop_schema(target, tenant.schema_name)
    return f"dropped an unfinished copy on {target}"


def _drop_unsealed_copy(tenant: Tenant, source: str, target: str) -> None:
    """After a failure before the seal committed: the target's copy goes (best effort; a
    rerun drops it otherwise). The source, unsealed, serves as before."""
    try:
        if _sealed_for(source, tenant.schema_name) is None:
            _drop_schema(target, tenant.schema_name)
    except Exception:  # the cell went away: the rerun cleans up
        pass


def _remove_old_copies(tenant: Tenant, step: Step, steps) -> str:
    """Remove every sealed copy of the tenant outside its current cell, once the processes that
    may still resolve it to the old cell have revalidated (one wait before the first)."""
    tenant.refresh_from_db()
    current = tenant.cell or CONTROL
    removed = []
    for name in cells.cell_names():
        if name == current:
            continue
        try:
            if not steps.old_copy_on(name, tenant):
                continue
        except psycopg.OperationalError:
            continue  # a cell that is down: its copy, if any, is removed by a later run
        if not removed:
            step("remove-old-copy")
            time.sleep(settings.TENANCY_RESOLVER_REVALIDATE_SECONDS + IN_FLIGHT_SECONDS)
        steps.remove_old_copy(name, tenant)
        removed.append(name)
    return ", ".join(steps.REMOVED.format(name) for name in removed)


# --- Steps ------------------------------------------------------------------------------------


def _bulk_copy(tenant: Tenant, source: str, target: str, step: Step) -> dict:
    """The archive from the source cell, imported into an empty schema on the target cell."""
    from tenants.operations.transfer import export_tenant, import_tenant
    from tenants.provisioning.schema_factory import create_tenant_schema

    step("export")
    with tempfile.TemporaryDirectory(prefix="tenant-move-") as folder:
        path = Path(folder) / f"{tenant.slug}.zip"
        export_tenant(tenant, path, using=alias_for_cell(source))
        step("schema")
        with no_tenant():
            create_tenant_schema(tenant.schema_name, using=alias_for_cell(target))
        step("import")
        try:
            imported = import_tenant(path, keep_identity=True, using=alias_for_cell(target))
        except BaseException:
            _drop_schema(target, tenant.schema_name)
            raise
    step("copied")
    return imported.tables


def _freeze_sync_and_seal(tenant, source, target, result: MoveResult, step: Step):
    """The freeze: lock the source's tables, copy what changed, compare, seal the source."""
    schema = tenant.schema_name
    with (
        _connect(source, autocommit=False) as src,
        _connect(target, autocommit=False) as dst,
        ThreadPoolExecutor(2) as pool,
    ):
        step("freeze")
        tables = _tables(src, schema)
        result.freeze_started = time.perf_counter()  # writers queue from the first LOCK on
        _lock_all(src, schema, tables)
        step("sync")
        for table in tables:
            result.delta_rows += _sync_table(pool, src, dst, schema, table)
        _copy_sequences(src, dst, schema)
        step("verify")
        result.tables = _compare_tables(pool, src, dst, schema, tables)
        dst.commit()
        step("seal")
        _seal(src, schema, tables, target)
        src.commit()


def _lock_all(src, schema: str, tables: list[str]) -> None:
    """``LOCK TABLE`` every table in EXCLUSIVE mode, in short tries: a writer's transaction
    that holds one table and wants another the mover holds would otherwise deadlock with it
    (and one of the two would fail after deadlock_timeout). Each try waits at most
    LOCK_TRY, gives back what it took, and lets the writers in flight finish."""
    statement = sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(
        sql.SQL(", ").join(sql.Identifier(schema, t) for t in tables)
    )
    deadline = time.monotonic() + LOCK_GIVE_UP_SECONDS
    while True:
        src.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TRY)))
        try:
            src.execute(statement)
            return
        except psycopg.errors.LockNotAvailable:
            src.rollback()
            if time.monotonic() > deadline:
                raise MoveError(
                    f"The tenant's tables stayed busy for {LOCK_GIVE_UP_SECONDS} s; nothing "
                    "was switched, try again."
                ) from None
            time.sleep(0.01)


def _switch(tenant: Tenant, source: str, target: str, result: MoveResult, step: Step):
    """Map the tenant to the target cell; this commit ends the freeze."""
    step("switch")
    with no_tenant(), transaction.atomic(using=DEFAULT_DB_ALIAS):
        moved = Tenant.objects.select_for_update().get(pk=tenant.pk)
        moved.cell = "" if target == CONTROL else target
        moved.save(update_fields=["cell"])  # the signal bumps the resolver's generation
    if result.freeze_started is not None:
        result.freeze_seconds = time.perf_counter() - result.freeze_started
    tenant.refresh_from_db()


# --- SQL on the cells -------------------------------------------------------------------------


def _connect(cell: str, *, autocommit: bool = True) -> psycopg.Connection:
    return postgres.connect(alias_for_cell(cell), autocommit=autocommit)


def _tables(conn, schema: str) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname",
        [schema],
    ).fetchall()
    return [name for (name,) in rows]


def _columns(conn, schema: str, table: str) -> tuple[list[str], list[str]]:
    """The table's columns and its primary key's columns (empty if none)."""
    columns = conn.execute(
        f"SELECT attname FROM pg_attribute WHERE attrelid = {_REGCLASS} AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attname",
        [schema, table],
    ).fetchall()
    key = conn.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        f"AND a.attnum = ANY(i.indkey) WHERE i.indrelid = {_REGCLASS} AND i.indisprimary "
        "ORDER BY a.attname",
        [schema, table],
    ).fetchall()
    return [c for (c,) in columns], [c for (c,) in key]


_REGCLASS = "(quote_ident(%s) || '.' || quote_ident(%s))::regclass"


def _row_hashes(conn, schema, table, columns, key) -> dict[str, str]:
    query = sql.SQL("SELECT ({key})::text, md5(({cols})::text) FROM {table}").format(
        key=_row(key), cols=_row(columns), table=sql.Identifier(schema, table)
    )
    return dict(conn.execute(query).fetchall())


def _row(columns: list[str]):
    return sql.SQL("ROW({})").format(sql.SQL(", ").join(map(sql.Identifier, columns)))


def _on_both(pool, query, src, dst, *args):
    """``query(conn, *args)`` on both servers at once (the freeze waits for the slower)."""
    here = pool.submit(query, src, *args)
    there = pool.submit(query, dst, *args)
    return here.result(), there.result()


def _sync_table(pool, src, dst, schema: str, table: str) -> int:
    """Make the target's table equal the source's: rows whose hash differs (by primary key)
    deleted and copied again; a table without a primary key copied whole."""
    columns, key = _columns(src, schema, table)
    name = sql.Identifier(schema, table)
    if key:
        here, there = _on_both(pool, _row_hashes, src, dst, schema, table, columns, key)
        stale = [k for k, digest in there.items() if here.get(k) != digest]
        fresh = [k for k, digest in here.items() if there.get(k) != digest]
        if not stale and not fresh:
            return 0
        if len(fresh) > len(here) // 2:  # mostly new: whole table (ANY() of a big list is slow)
            key = []
    if key:
        match = sql.SQL("({})::text = ANY(%s)").format(_row(key))
        if stale:
            dst.execute(sql.SQL("DELETE FROM {} WHERE {}").format(name, match), [stale])
        where, params = sql.SQL(" WHERE {}").format(match), [fresh]
    else:
        dst.execute(sql.SQL("DELETE FROM {}").format(name))
        where, params = sql.SQL(""), []
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    out = sql.SQL("COPY (SELECT {} FROM {}{}) TO STDOUT").format(cols, name, where)
    copied = 0
    into = sql.SQL("COPY {} ({}) FROM STDIN").format(name, cols)
    with src.cursor().copy(out, params) as reader, dst.cursor().copy(into) as writer:
        for block in reader:
            writer.write(block)
            copied += bytes(block).count(b"\n")
    return copied


def _copy_sequences(src, dst, schema: str) -> None:
    rows = src.execute(
        "SELECT sequencename FROM pg_sequences WHERE schemaname = %s", [schema]
    ).fetchall()
    for (name,) in rows:
        seq = sql.Identifier(schema, name)
        value, called = src.execute(
            sql.SQL("SELECT last_value, is_called FROM {}").format(seq)
        ).fetchone()
        dst.execute(f"SELECT setval({_REGCLASS}, %s, %s)", [schema, name, value, called])


def _table_digest(conn, schema: str, table: str, columns, key) -> tuple[int, str]:
    order = _row(key or columns)
    query = sql.SQL(
        "SELECT count(*), coalesce(md5(string_agg(md5(({cols})::text), '' ORDER BY {order})), '')"
        " FROM {table}"
    ).format(cols=_row(columns), order=order, table=sql.Identifier(schema, table))
    count, digest = conn.execute(query).fetchone()
    return count, digest


def _compare_tables(pool, src, dst, schema, tables: list[str]) -> dict[str, tuple[int, str]]:
    """Every table's row count and hash, equal on both servers, or MoveError."""
    digests = {}
    for table in tables:
        columns, key = _columns(src, schema, table)
        here, there = _on_both(pool, _table_digest, src, dst, schema, table, columns, key)
        if here != there:
            raise MoveError(
                f"Verification failed: {table} has {here[0]} rows on the source and {there[0]} "
                "on the target (or their contents differ). Nothing was switched."
            )
        digests[table] = here
    return digests


def _seal(conn, schema: str, tables: list[str], target: str) -> None:
    """Every write to the old copy fails from now on (its transaction commits before the map
    is switched): SQLSTATE 55P03 is "unavailable" to the site, a 503 with Retry-After."""
    function = sql.Identifier(schema, SEAL_TRIGGER)
    conn.execute(
        sql.SQL(
            "CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION '{} %', {} USING ERRCODE = '55P03'; END $$"
        ).format(function, sql.SQL(MOVED_AWAY), sql.Literal(target))
    )
    for table in tables:
        conn.execute(
            sql.SQL(
                "CREATE TRIGGER {} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {} "
                "FOR EACH STATEMENT EXECUTE FUNCTION {}()"
            ).format(sql.Identifier(SEAL_TRIGGER), sql.Identifier(schema, table), function)
        )
    conn.execute(
        sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
            sql.Identifier(schema), sql.Literal(SEAL_MARK + target)
        )
    )


def _schema_comment(conn, schema: str) -> str | None:
    """None if the schema does not exist, else its comment ("" if none)."""
    row = conn.execute(
        "SELECT coalesce(obj_description(oid, 'pg_namespace'), '') FROM pg_namespace "
        "WHERE nspname = %s",
        [schema],
    ).fetchone()
    return None if row is None else row[0]


def _sealed(comment: str) -> bool:
    return comment.startswith(SEAL_MARK)


def _sealed_for(cell: str, schema: str) -> str | None:
    """The cell that the sealed copy ``schema`` on ``cell`` moved to, or None if unsealed."""
    with _connect(cell) as conn:
        found = _schema_comment(conn, schema)
    if found is None:
        raise MoveError(f"The tenant's schema {schema} is missing on its cell {cell}.")
    return found[len(SEAL_MARK) :] if _sealed(found) else None


def _drop_schema(cell: str, schema: str) -> None:
    with _connect(cell) as conn:
        conn.execute(postgres.drop_schema_sql(schema, if_exists=True))


def _stepper(on_step: Step | None) -> Step:
    """``on_step``, and the test hook: ``TENANCY_MOVE_PAUSE_AT=step:seconds`` sleeps there."""
    pause_at, _, seconds = os.environ.get(PAUSE_ENV, "").partition(":")

    def step(name: str) -> None:
        if on_step is not None:
            on_step(name)
        if name == pause_at:
            time.sleep(float(seconds or 60))

    return step
