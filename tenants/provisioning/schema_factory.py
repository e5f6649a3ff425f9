"""Fast creation of tenant schemas (schema mode): the one entry point is create_tenant_schema().

A new tenant schema is, fastest first:

1. a **spare** from the pool, renamed (``schema_pool``; well under a millisecond);
2. the **template script** run for it (``schema_template``; one round trip, the same
   statements whatever the number of tenants; times in docs/benchmarks.md);
3. the **migrations** run for it (django-tenants' own path), only if the template holds objects
   the script generator cannot copy.

Whichever way, the result is what running every migration gives (tests compare the catalogs),
and all of it happens in the caller's transaction: roll it back and the schema is gone (or the
spare is back in the pool).

Operators prepare the template and the pool with ``manage.py prepare_tenant_schemas`` (after
``migrate`` on deploy); without it the first tenant after a deploy builds the template itself.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from tenants import postgres
from tenants.provisioning import schema_pool, schema_template
from tenants.runtime.context import current_tenant, no_tenant

logger = logging.getLogger(__name__)

# A tenant schema: what schema_name_for_slug() makes. Names starting with "_" are the
# factory's own (templates, spares); pg_ names belong to PostgreSQL.
_TENANT_SCHEMA_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}\Z")
SYSTEM_SCHEMAS = frozenset({"public", "information_schema"})


class SchemaNameRefused(ValueError):
    """Not a name a tenant schema may have."""


def check_tenant_schema_name(schema_name: str) -> None:
    if (
        not isinstance(schema_name, str)
        or not _TENANT_SCHEMA_RE.match(schema_name)
        or schema_name.startswith("pg_")
        or schema_name in SYSTEM_SCHEMAS
    ):
        raise SchemaNameRefused(f"{schema_name!r} is not a valid tenant schema name.")


def create_tenant_schema(
    schema_name: str,
    *,
    on_step: Callable[[str], None] | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> str:
    """Create the schema ``schema_name`` with every tenant table, as the migrations would, in
    the database ``using`` (a cell's alias; the script is the control database's, whose public
    schema every cell's matches).

    Runs in the caller's transaction (or its own, if there is none). Returns how the schema was
    made: ``"spare"``, ``"script"`` or ``"migrations"``. ``on_step`` is called with
    ``"schema"`` once the schema exists and with ``"clone"`` once its tables do (progress
    reporting, fault-injection tests). Raises ``SchemaNameRefused`` for a name that is not a
    tenant schema name, and the database's error if the schema already exists.
    """
    check_tenant_schema_name(schema_name)
    step = on_step or (lambda _name: None)
    target = connections[using]
    if current_tenant() is not None or target.schema_name != settings.PUBLIC_SCHEMA_NAME:
        # The script names public tables as seen from the public search path.
        raise RuntimeError("create_tenant_schema() runs with no tenant active (platform code).")
    with no_tenant(), transaction.atomic(using=using, savepoint=False):
        if schema_pool.pool_size() > 0:
            claimed = schema_pool.claim(schema_name, using=using)
            schema_pool.request_refill_on_commit(using)
            if claimed:
                step("schema")
                step("clone")
                return "spare"
        create = postgres.create_schema_sql(schema_name)
        try:
            script = schema_template.current_script()
        except schema_template.UnsupportedTemplate as problem:
            logger.warning("Creating schema %s by migrations: %s", schema_name, problem)
            with target.cursor() as cursor:
                cursor.execute(create)
            step("schema")
            schema_template.migrate_schema(schema_name, using=using)
            step("clone")
            return "migrations"
        with target.cursor() as cursor:
            cursor.execute(create)
            step("schema")
            cursor.execute(script.render(schema_name))
        step("clone")
        return "script"


def prepare(
    *, spares: int | None = None, drop_stale: bool = True, using: str = DEFAULT_DB_ALIAS
) -> dict:
    """Deploy step: build the template for the current code (on the control database), fill
    the pool of database ``using`` (each cell has its own), drop stale templates and spares."""
    with no_tenant():
        template = schema_template.ensure_template()
        script = schema_template.current_script()
        dropped = schema_pool.drop_stale(using) if drop_stale else []
        created = schema_pool.fill(spares, using=using)
        return {
            "template": template,
            "statements": script.statement_count,
            "spares_created": created,
            "spares_ready": len(schema_pool.spare_names(using)),
            "dropped": dropped,
        }


def orphan_schemas(using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Schemas of database ``using`` that look like a tenant's but belong to no tenant of that
    cell (left by a crash elsewhere, or the old copy of a tenant that moved)."""
    from tenants.cells import alias_of
    from tenants.models import Tenant

    with no_tenant():
        with connections[using].cursor() as cursor:
            cursor.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname !~ '^(pg_|_)' "
                "AND nspname <> ALL(%s) ORDER BY nspname",
                [sorted(SYSTEM_SCHEMAS)],
            )
            schemas = [row[0] for row in cursor.fetchall()]
        owned = {
            tenant.schema_name
            for tenant in Tenant.objects.filter(schema_name__in=schemas).only("schema_name", "cell")
            if alias_of(tenant) == using
        }
    return [name for name in schemas if name not in owned]


def drop_schema(schema_name: str, using: str = DEFAULT_DB_ALIAS) -> None:
    """Drop a schema and everything in it (used for orphans; tenants are deleted elsewhere)."""
    with no_tenant(), transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute(postgres.drop_schema_sql(schema_name))
