"""One upgrade run: prepare (read and check), write, verify."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from tenants import parallel, postgres
from tenants.conf import public_schema, schema_mode
from tenants.operations.upgrade.errors import UpgradeError
from tenants.operations.upgrade.plan import Plan, ids_from_models, plan_upgrade, read_target_ids
from tenants.operations.upgrade.source import Source
from tenants.operations.upgrade.tables import Table, copied_tables
from tenants.operations.upgrade.verify import Mismatch, find_mismatches
from tenants.operations.upgrade.write import (
    check_no_foreign_schemas,
    check_target_is_fresh,
    done_schemas,
    ensure_marker_table,
    table_exists,
    write_schema,
)

OnSchema = Callable[[str, Exception | None], None]


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
        migrated = self.conn is not None and table_exists(
            self.conn, public_schema(), "django_content_type"
        )
        if not migrated and not dry_run:
            raise UpgradeError("Migrate the target's public schema first.")
        self.done = done_schemas(self.conn) if self.conn is not None else set()
        if migrated:
            check_target_is_fresh(self.conn, self.done)
        self.tables = copied_tables()
        ids = read_target_ids(self.conn) if migrated else ids_from_models()
        self.plan = plan_upgrade(self.source, ids)
        self.todo = [s for s in self.plan.schemas() if s not in self.done]
        if self.conn is not None:
            check_no_foreign_schemas(self.conn, self.todo)
        return self.plan

    def write(self, on_schema: OnSchema | None = None, *, jobs: int = 2) -> list[str]:
        """Write every schema not written yet, each in one transaction: public first (the
        tenant rows that the other schemas point at), then the tenants, ``jobs`` at a time.

        On a failure or Ctrl-C no new schema is started, the ones being written are finished
        or rolled back, and the error is raised; a rerun does what is left.
        """
        ensure_marker_table(self.conn)
        written: list[str] = []

        def report(schema: str, error: Exception | None):
            if error is None:
                written.append(schema)
            if on_schema is not None:
                on_schema(schema, error)

        if public_schema() in self.todo:
            self._write_public(report)
        tenant_schemas = [s for s in self.todo if s != public_schema()]
        if tenant_schemas:
            self._write_tenant_schemas(tenant_schemas, jobs, report)
        return written

    def _write_public(self, report: OnSchema):
        public = public_schema()
        try:
            write_schema(self.conn, self.plan, public, self.tables, self.source_url, None)
        except psycopg.Error as error:
            report(public, error)
            _raise_write_failure(public, error)
        report(public, None)

    def _write_tenant_schemas(self, schemas: list[str], jobs: int, report: OnSchema):
        """Each cloned from the template and filled, on ``jobs`` connections."""
        from tenants.provisioning import bulk

        blueprint = bulk.build_blueprint()

        def write(schema: str, conn: parallel.WorkerConnection):
            clone_sql = blueprint.sql_for(schema)
            write_schema(conn.get(), self.plan, schema, self.tables, self.source_url, clone_sql)

        def done(outcome: parallel.Outcome):
            if outcome.ok or isinstance(outcome.error, psycopg.Error):
                report(outcome.item, outcome.error)

        outcomes = parallel.run(schemas, write, jobs=jobs, stop_on_error=True, on_done=done)
        failure = next((o for o in outcomes if not o.ok), None)
        if failure is not None:
            _raise_write_failure(failure.item, failure.error)

    def verify(self) -> list[Mismatch]:
        """Compare every schema and table with a fresh read of the source."""
        fresh = Source(self.source_url)
        try:
            expected = plan_upgrade(fresh, read_target_ids(self.conn))
        finally:
            fresh.close()
        self.plan = expected
        return find_mismatches(self.conn, expected, self.tables)


def _raise_write_failure(schema: str, error: Exception):
    if not isinstance(error, psycopg.Error):
        raise error
    raise UpgradeError(
        f"Writing schema {schema} failed: {postgres.describe_error(error)}. "
        "Nothing of it was kept; other schemas are complete. Rerun to go on."
    ) from error
