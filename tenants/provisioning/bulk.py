"""Many tenant schemas at once, on the shared fast path (``tenants.provisioning.schema_template``).

``schema_factory.create_tenant_schema()`` makes one schema in the caller's Django
transaction. Benchmarks (a thousand bench tenants) and the upgrade (a schema per tenant, filled
with rows in the same transaction) need the same SQL on plain psycopg connections, several at a
time: ``build_blueprint()`` takes the template script once, ``SchemaBlueprint.sql_for()`` gives
the statements for one schema, and ``provision_schemas()`` runs them in parallel, one
transaction per schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tenants import parallel, postgres
from tenants.provisioning import schema_factory, schema_template
from tenants.runtime.context import no_tenant


class CloneError(RuntimeError):
    """The template cannot be turned into a script (objects the script writer cannot copy)."""


@dataclass(frozen=True)
class SchemaBlueprint:
    script: schema_template.SchemaScript

    def sql_for(self, schema: str) -> str:
        """The statements that create ``schema`` as a migrated, empty tenant schema.

        They name public tables as seen from the public search path: run them before any
        ``SET LOCAL search_path`` to the new schema.
        """
        schema_factory.check_tenant_schema_name(schema)
        create = postgres.create_schema_sql(schema) + ";\n"
        return create + self.script.render(schema)


def build_blueprint() -> SchemaBlueprint:
    """The current code's template script (the template schema is migrated first if missing)."""
    try:
        with no_tenant():
            return SchemaBlueprint(schema_template.current_script())
    except schema_template.UnsupportedTemplate as problem:
        raise CloneError(f"The template schema cannot be scripted: {problem}") from problem


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

    def create(schema: str, conn: parallel.WorkerConnection) -> None:
        body = blueprint.sql_for(schema)
        postgres.run_script(
            conn.get(), f"BEGIN;\nSET LOCAL search_path TO public;\n{body}\nCOMMIT;"
        )

    def report(outcome: parallel.Outcome) -> None:
        if on_done is not None:
            on_done(outcome.item, outcome.error)

    outcomes = parallel.run(schemas, create, jobs=jobs, on_done=report)
    return {outcome.item: outcome.error for outcome in outcomes if not outcome.ok}
