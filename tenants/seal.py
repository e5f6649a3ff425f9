"""Freezing and sealing ONE tenant's rows on a row-mode cell (PostgreSQL with row-level
security), the building block of a row-mode move (docs/cells.md, "Moving a tenant").

Every tenant-owned table that lives in a cell has a row-level ``BEFORE INSERT OR UPDATE OR
DELETE`` trigger (:class:`RefuseSealedWrites`, from migrations) that

1. takes ``pg_advisory_xact_lock_shared(FREEZE_LOCK_CLASS, tenant_id)``: a mover holding the
   same key exclusively in its open transaction (:func:`freeze`) makes the tenant's writers
   wait, and no one else's (readers never wait);
2. refuses the write with SQLSTATE 55P03 and the message ``MOVED_AWAY`` if the tenant has a
   row in ``tenancy_sealed_tenant`` (:func:`seal`): the site answers 503 with Retry-After and
   forgets its host lookup (``tenants.runtime.unavailable.moved_away``). A writer that waited
   out the freeze therefore never writes into the old copy.

The only write let through on a sealed tenant is the removal of its old rows by the owner role
in a transaction that set ``tenancy.removing`` to the tenant's id (:func:`allow_removal`).
The application role may read the mark but neither make nor remove it.
"""

from __future__ import annotations

from django.db.migrations.operations.base import Operation
from psycopg import sql

from tenants import rls
from tenants.runtime.unavailable import MOVED_AWAY

SEALED_TABLE = "tenancy_sealed_tenant"
FUNCTION = "tenancy_refuse_sealed_writes"
TRIGGER = "tenancy_refuse_sealed_writes"
REMOVING = "tenancy.removing"
FREEZE_LOCK_CLASS = 0x66727A6E  # the advisory lock's first key: "frzn"
# Its second, an int4: the tenant's id (modulo 2^31 past that: two tenants may share a key,
# which at worst holds the other's writers for the length of a freeze).
_KEY = "({id} % 2147483648)::int"

_CREATE_SQL = f"""
CREATE TABLE IF NOT EXISTS {SEALED_TABLE} (
    tenant_id bigint PRIMARY KEY,
    moved_to text NOT NULL,
    sealed_at timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tenant bigint;
    target text;
BEGIN
    IF TG_OP = 'DELETE' THEN tenant := OLD.tenant_id; ELSE tenant := NEW.tenant_id; END IF;
    PERFORM pg_advisory_xact_lock_shared({FREEZE_LOCK_CLASS}, {_KEY.format(id="tenant")});
    SELECT moved_to INTO target FROM {SEALED_TABLE} WHERE tenant_id = tenant;
    IF FOUND AND NOT (
        TG_OP = 'DELETE'
        AND coalesce(current_setting('{REMOVING}', true), '') = tenant::text
        AND pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID),
                        'USAGE')
    ) THEN
        RAISE EXCEPTION '{MOVED_AWAY} %', target USING ERRCODE = '55P03';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$;
"""
_DROP_SQL = f"DROP FUNCTION IF EXISTS {FUNCTION}(); DROP TABLE IF EXISTS {SEALED_TABLE};"


def revoke_sql(role: str) -> str:
    """The application role reads the seal marks, never writes them (appended to the grants,
    which give it every table)."""
    statement = (
        sql.SQL("REVOKE INSERT, UPDATE, DELETE ON {} FROM {}")
        .format(sql.Identifier(SEALED_TABLE), sql.Identifier(role))
        .as_string()
    )
    return (
        f"DO $$ BEGIN IF to_regclass('{SEALED_TABLE}') IS NOT NULL THEN {statement}; END IF; END $$"
    )


class SealedTenants(Operation):
    """Migration operation: the seal-mark table and the trigger function (PostgreSQL with
    row-level security only; changes no model state)."""

    reduces_to_sql = True
    reversible = True

    def deconstruct(self):
        return self.__class__.__name__, [], {}

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if rls.applies_to(schema_editor.connection):
            schema_editor.execute(_CREATE_SQL, params=None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if rls.applies_to(schema_editor.connection):
            schema_editor.execute(_DROP_SQL, params=None)

    def describe(self):
        return "The sealed-tenant marks and the trigger that refuses a sealed tenant's writes"


class RefuseSealedWrites(rls._TableOperation):
    """Migration operation: the freeze-and-seal trigger on a tenant-owned model's table (after
    :class:`SealedTenants`); same conditions as ``tenants.rls.RowLevelSecurity``."""

    def sql(self, schema_editor, model, forwards):
        table, trigger = sql.Identifier(model._meta.db_table), sql.Identifier(TRIGGER)
        drop = sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(trigger, table)
        if not forwards:
            return drop.as_string()
        create = sql.SQL(
            "CREATE TRIGGER {} BEFORE INSERT OR UPDATE OR DELETE ON {} FOR EACH ROW "
            "EXECUTE FUNCTION {}()"
        ).format(trigger, table, sql.Identifier(FUNCTION))
        return (drop + sql.SQL("; ") + create).as_string()

    def describe(self):
        return f"Refuse a sealed tenant's writes to {self.model_name}"


# --- What the mover sends (on the owner's connection to a cell) ----------------------------------


def freeze(cursor, tenant_id: int) -> None:
    """Hold the tenant's writers (until the transaction ends); others write on."""
    key = _KEY.format(id="%s::bigint").replace(" % ", " %% ")
    cursor.execute(f"SELECT pg_advisory_xact_lock(%s, {key})", [FREEZE_LOCK_CLASS, tenant_id])


def seal(cursor, tenant_id: int, moved_to: str) -> None:
    """Mark the tenant moved: from this transaction's commit on, its writes here are refused."""
    cursor.execute(
        f"INSERT INTO {SEALED_TABLE} (tenant_id, moved_to) VALUES (%s, %s) "
        "ON CONFLICT (tenant_id) DO UPDATE SET moved_to = EXCLUDED.moved_to",
        [tenant_id, moved_to],
    )


def sealed(cursor, tenant_id: int) -> str | None:
    """The cell a tenant was sealed for here, or None."""
    query = f"SELECT moved_to FROM {SEALED_TABLE} WHERE tenant_id = %s"
    result = cursor.execute(query, [tenant_id])
    row = (result or cursor).fetchone()  # psycopg's connection returns a cursor
    return row[0] if row else None


def allow_removal(cursor, tenant_id: int) -> None:
    """Let this transaction (owner role only) delete the sealed tenant's old rows."""
    cursor.execute("SELECT set_config(%s, %s, true)", [REMOVING, str(tenant_id)])


def unseal(cursor, tenant_id: int) -> None:
    """Forget the mark once no row of the tenant is left here (or to undo a seal)."""
    cursor.execute(f"DELETE FROM {SEALED_TABLE} WHERE tenant_id = %s", [tenant_id])
