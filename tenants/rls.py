"""Row-level security: row mode on PostgreSQL, with PostgreSQL itself keeping tenants apart.

Behind the scoped manager (``tenants.runtime.scoping``) stands a second wall the application
cannot forget: every tenant-owned table has ``ENABLE`` and ``FORCE ROW LEVEL SECURITY`` and one
policy, for every command, that admits only rows whose ``tenant_id`` is the transaction-local
setting ``tenancy.tenant_id``. The row-mode backend (``tenants.backends.rowsecurity``) sends that
setting with every statement, from the current tenant; no tenant sends ``''``, which matches no
row. The policies come from migrations (:class:`RowLevelSecurity`; check ``tenants.E002``).

Two database roles (docs/row-level-security.md):

* the **application** (alias ``default``): neither owns the tables nor has ``BYPASSRLS``, so the
  policies hold for everything it sends, raw SQL included;
* the **owner** (alias ``owner``, from ``DATABASE_URL``): owns the tables, has ``BYPASSRLS``;
  migrations and the few platform paths that must see every tenant's rows use it. The
  application role cannot become it from SQL (it is not a member of it).
"""

from __future__ import annotations

from django.conf import settings
from django.db import connections
from django.db.migrations.operations.base import Operation
from psycopg import sql

SETTING = "tenancy.tenant_id"
POLICY = "tenant_isolation"
OWNER = "owner"  # the database alias of the owner role
# The current tenant as the policies read it: '' (no tenant) is NULL, which equals nothing.
# A sub-select, so PostgreSQL reads the setting once per statement (an InitPlan), not per row.
CURRENT_TENANT_SQL = f"NULLIF((SELECT current_setting('{SETTING}', true)), '')::bigint"


def enabled() -> bool:
    """Whether row-level security is on (``TENANCY_ROW_LEVEL_SECURITY``)."""
    return getattr(settings, "TENANCY_ROW_LEVEL_SECURITY", False)


def owner_alias() -> str:
    """The alias that sees every tenant's rows: the owner's with row-level security on, the
    ordinary connection otherwise (where the scoped manager is the only filter)."""
    return OWNER if enabled() else "default"


def app_role() -> str:
    """The application's role: the user of the ``default`` alias."""
    return settings.DATABASES["default"]["USER"]


# --- Policies -------------------------------------------------------------------------------------


def policy_sql(table: str, column: str = "tenant_id") -> str:
    """``ENABLE``/``FORCE ROW LEVEL SECURITY`` and the tenant policy on ``table``, idempotent."""
    table_id = sql.Identifier(table)
    predicate = sql.SQL("{} = {}").format(sql.Identifier(column), sql.SQL(CURRENT_TENANT_SQL))
    return (
        sql.SQL(
            "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY; ALTER TABLE {t} FORCE ROW LEVEL SECURITY; "
            "DROP POLICY IF EXISTS {p} ON {t}; "
            "CREATE POLICY {p} ON {t} FOR ALL USING ({q}) WITH CHECK ({q})"
        )
        .format(t=table_id, p=sql.Identifier(POLICY), q=predicate)
        .as_string()
    )


def drop_policy_sql(table: str) -> str:
    table_id = sql.Identifier(table)
    return (
        sql.SQL(
            "DROP POLICY IF EXISTS {p} ON {t}; ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY; "
            "ALTER TABLE {t} DISABLE ROW LEVEL SECURITY"
        )
        .format(t=table_id, p=sql.Identifier(POLICY))
        .as_string()
    )


def applies_to(connection) -> bool:
    """Policies are made on PostgreSQL with row-level security on (not in schema mode)."""
    return connection.vendor == "postgresql" and enabled()


class _TableOperation(Operation):
    """A migration operation that sends SQL about one model's table where row-level security
    applies (PostgreSQL, the setting on), and changes no model state."""

    reduces_to_sql = True
    reversible = True

    def __init__(self, model_name: str, *args: str):
        self.model_name, self.args = model_name, args

    def deconstruct(self):
        return self.__class__.__name__, [self.model_name, *self.args], {}

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self.apply(schema_editor, to_state.apps.get_model(app_label, self.model_name))

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        self.apply(schema_editor, model, forwards=False)

    def apply(self, schema_editor, model, forwards: bool = True):
        if applies_to(schema_editor.connection):
            schema_editor.execute(self.sql(schema_editor, model, forwards), params=None)

    def sql(self, schema_editor, model, forwards: bool) -> str:
        raise NotImplementedError


class RowLevelSecurity(_TableOperation):
    """Migration operation: the tenant policy on a tenant-owned model's table.

    Every migration that creates a ``TenantOwnedModel`` adds one after its ``CreateModel``::

        RowLevelSecurity("pagecontent"),

    It does nothing on SQLite, in schema mode or with ``TENANCY_ROW_LEVEL_SECURITY`` off, and
    changes no model state. ``manage.py check`` (``tenants.E002``) names a model without one.
    """

    def sql(self, schema_editor, model, forwards):
        table = model._meta.db_table
        return policy_sql(table) if forwards else drop_policy_sql(table)

    def describe(self):
        return f"Row-level security on {self.model_name} (tenant policy)"

    @property
    def migration_name_fragment(self):
        return f"row_level_security_{self.model_name.lower()}"


class CascadeAcrossTenants(_TableOperation):
    """Migration operation: PostgreSQL itself deletes the rows of a tenant-owned model whose
    foreign key ``field_name`` (``on_delete=CASCADE``) points at a deleted platform row::

        CascadeAcrossTenants("membership", "user"),

    Django's cascade is a query for the dependent rows, which row-level security limits to the
    current tenant: deleting a user who is a member of two sites would find one membership and
    leave the other pointing at nothing. The database's own cascade (``ON DELETE CASCADE``)
    is a referential action, which row-level security does not limit. Same conditions as
    :class:`RowLevelSecurity`; a later ``AlterField`` of the field needs it again.
    """

    def sql(self, schema_editor, model, forwards):
        field = model._meta.get_field(self.args[0])
        table = model._meta.db_table
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(_FOREIGN_KEYS_SQL, [table, table, field.column])
            names = [name for (name,) in cursor.fetchall()]
        return _foreign_key_sql(table, field, names, cascade=forwards)

    def describe(self):
        return f"Deleting what {self.model_name}.{self.args[0]} points at cascades in SQL"


_FOREIGN_KEYS_SQL = (
    "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = %s::regclass AND "
    "conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = %s::regclass "
    "AND attname = %s)]"
)


def _foreign_key_sql(table, field, names, cascade: bool) -> str:
    column, target = field.column, field.target_field
    statement = sql.SQL(
        "ALTER TABLE {t} {drops}ADD CONSTRAINT {c} FOREIGN KEY ({col}) REFERENCES {rt} ({rc}) "
        + ("ON DELETE CASCADE " if cascade else "")
        + "DEFERRABLE INITIALLY DEFERRED"
    ).format(
        t=sql.Identifier(table),
        drops=sql.SQL("").join(
            sql.SQL("DROP CONSTRAINT {}, ").format(sql.Identifier(n)) for n in names
        ),
        c=sql.Identifier(names[0] if names else f"{table}_{column}_fk"),
        col=sql.Identifier(column),
        rt=sql.Identifier(target.model._meta.db_table),
        rc=sql.Identifier(target.column),
    )
    return statement.as_string()


def declared_operations() -> list[tuple[str, Operation]]:
    """``(app_label, operation)`` for every operation of this module in the migration files."""
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    return [
        (app_label, operation)
        for (app_label, _name), migration in sorted(loader.disk_migrations.items())
        for operation in migration.operations
        if isinstance(operation, _TableOperation)
    ]


def declared_policies() -> set[tuple[str, str]]:
    """``(app_label, model_name)`` of every :class:`RowLevelSecurity` in the migration files."""
    return {
        (app_label, operation.model_name.lower())
        for app_label, operation in declared_operations()
        if isinstance(operation, RowLevelSecurity)
    }


def reapply_if_missing(using: str = OWNER) -> bool:
    """After ``migrate``: if a tenant table lacks its forced policy (a database migrated with
    the setting off, then switched on), apply every declared operation again, to the current
    models. Idempotent; True if it had to."""
    from django.apps import apps

    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(_UNPROTECTED_SQL, [tenant_owned_tables(), POLICY])
        if not cursor.fetchone()[0]:
            return False
    with connection.schema_editor() as editor:
        for app_label, operation in declared_operations():
            try:
                model = apps.get_model(app_label, operation.model_name)
            except LookupError:  # a model deleted since
                continue
            operation.apply(editor, model)
    return True


def tenant_owned_tables() -> list[str]:
    from django.apps import apps

    from tenants.models import TenantOwnedModel

    return sorted(
        m._meta.db_table
        for m in apps.get_models()
        if issubclass(m, TenantOwnedModel) and not m._meta.proxy and m._meta.managed
    )


# --- Roles ----------------------------------------------------------------------------------------

_TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"  # never TRUNCATE: it ignores policies


def grant_sql(role: str, database: str) -> str:
    """What the application role may do: connect, read and write rows (subject to the
    policies), use sequences; also on tables the owner creates later."""
    ident = sql.Identifier(role)
    return (
        sql.SQL(
            "GRANT CONNECT ON DATABASE {db} TO {r}; GRANT USAGE ON SCHEMA public TO {r}; "
            "GRANT {tp} ON ALL TABLES IN SCHEMA public TO {r}; "
            "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}; "
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {tp} ON TABLES TO {r}; "
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {r}"
        )
        .format(db=sql.Identifier(database), r=ident, tp=sql.SQL(_TABLE_PRIVILEGES))
        .as_string()
    )


def create_role_sql(role: str, attributes: str = "LOGIN") -> str:
    """``CREATE ROLE role attributes`` unless it exists. Safe to run from several processes at
    once (one makes it, the others find it made)."""
    statement = sql.SQL("CREATE ROLE {} " + attributes).format(sql.Identifier(role)).as_string()
    return (
        "DO $$ BEGIN " + statement + "; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    )


def ensure_app_role(using: str = OWNER) -> None:
    """The application role has its grants on ``using``'s database (``migrate`` runs this
    after every run with row-level security on); :class:`RoleMissing` if it does not exist."""
    from tenants import seal

    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [app_role()])
        if not cursor.fetchone():
            raise RoleMissing(app_role())
        cursor.execute(grant_sql(app_role(), connection.settings_dict["NAME"]))
        cursor.execute(seal.revoke_sql(app_role()))


class RoleMissing(RuntimeError):
    def __init__(self, role: str):
        super().__init__(
            f"The application's database role {role!r} does not exist. Create it as a superuser "
            f"(`manage.py ensure_database` does, as does `make run`), or: CREATE ROLE {role} "
            "LOGIN PASSWORD '...'; see docs/row-level-security.md."
        )


# --- What a connection's role can see -------------------------------------------------------------

_UNPROTECTED = """
    SELECT c.relname FROM pg_class c
    WHERE c.oid = ANY (SELECT to_regclass(t) FROM unnest(%s::text[]) t)
      AND (NOT c.relrowsecurity OR NOT c.relforcerowsecurity{owned}
           OR NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid
                          AND p.polname = %s AND p.polcmd = '*'))
    ORDER BY c.relname
"""
_UNPROTECTED_SQL = "SELECT array(" + _UNPROTECTED.format(owned="") + ") <> '{}'"
_PROBLEMS_SQL = (
    "SELECT r.rolsuper, r.rolbypassrls, array("
    + _UNPROTECTED.format(owned=" OR pg_has_role(c.relowner, 'USAGE')")
    + ") FROM pg_roles r WHERE r.rolname = current_user"
)


def isolation_problems(cursor, tables: list[str] | None = None) -> list[str]:
    """Why the policies would not hold for the role ``cursor`` is connected as: it is a
    superuser, bypasses row-level security, owns a tenant-owned table, or one has no forced
    policy. Empty when every existing tenant-owned table keeps its tenants apart."""
    cursor.execute(_PROBLEMS_SQL, [tables or tenant_owned_tables(), POLICY])
    superuser, bypass, unprotected = cursor.fetchone()
    problems = []
    if superuser:
        problems.append("the role is a superuser")
    if bypass:
        problems.append("the role has BYPASSRLS")
    if unprotected:
        problems.append(
            "these tables are owned by the role or lack the forced tenant policy: "
            + ", ".join(unprotected)
        )
    return problems


def sees_every_tenant(cursor) -> bool:
    """Whether the role of ``cursor`` reads tenant-owned tables unfiltered (superuser, owner
    without FORCE, BYPASSRLS, or no policies): what a copy of every tenant's rows needs."""
    cursor.execute(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
        " UNION ALL SELECT NOT bool_or(relrowsecurity) FROM pg_class"
        " WHERE oid = ANY (SELECT to_regclass(t) FROM unnest(%s::text[]) t)",
        [tenant_owned_tables()],
    )
    return any(row[0] for row in cursor.fetchall())
