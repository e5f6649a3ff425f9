"""The plan: where every source row goes in the target, decided one table family at a time.

Tenants and domains go to public; tenant-owned rows follow their tenant; admin log entries go
where their object lives; users go to public (platform users) and to every schema whose rows
or memberships refer to them; groups and permission grants follow their users.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django_tenants.postgresql_backend.base import is_valid_schema_name
from psycopg import sql

from tenants.conf import is_platform_slug, platform_slug, public_schema
from tenants.models import Domain, Tenant, TenantOwnedModel
from tenants.operations.fleet import public_only_tables
from tenants.operations.upgrade.errors import UpgradeError
from tenants.operations.upgrade.source import Source, check_source, natural_keys, read_source
from tenants.operations.upgrade.tables import Table, copied_tables


@dataclass
class Plan:
    """Where every source row goes: rows per schema and table (already mapped)."""

    tenants: list[dict]  # id, slug, name, schema (target), source_schema, default
    rows: dict[str, dict[str, list[tuple]]] = field(default_factory=dict)  # schema -> table
    notes: list[str] = field(default_factory=list)

    def schemas(self) -> list[str]:
        public = public_schema()
        return [public] + sorted(s for s in self.rows if s != public)

    def count(self, schema: str, table: str) -> int:
        return len(self.rows.get(schema, {}).get(table, []))

    def slug_of(self, schema: str) -> str | None:
        """The slug of the tenant that lives in ``schema`` (public: the default tenant)."""
        return next((t["slug"] for t in self.tenants if t["schema"] == schema), None)


# --- The target's ids, which the plan maps references to -------------------------------------


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


def read_target_ids(conn) -> TargetIds:
    public = public_schema()
    content_types = sql.SQL("SELECT id, app_label, model FROM {}").format(
        sql.Identifier(public, "django_content_type")
    )
    cts = {(a, m): i for i, a, m in conn.execute(content_types)}
    by_id = {i: k for k, i in cts.items()}
    permissions = sql.SQL("SELECT id, content_type_id, codename FROM {}").format(
        sql.Identifier(public, "auth_permission")
    )
    perms = {(by_id[ct], codename): i for i, ct, codename in conn.execute(permissions)}
    return TargetIds(cts, perms)


# --- Planning --------------------------------------------------------------------------------


def plan_upgrade(source: Source, target_ids: TargetIds) -> Plan:
    """Read the source and decide where each of its rows goes in the target."""
    tables = copied_tables()
    planner = _Planner(tables, read_source(source, tables))
    plan = Plan(tenants=planner.tenants())
    check_source(source, plan.tenants)
    source_cts, source_perms = natural_keys(source)
    planner.tenants_and_domains()
    planner.tenant_owned_rows()
    plan.notes += planner.log_entries(source_cts, target_ids)
    planner.users()
    plan.notes += planner.groups_and_permissions(source_perms, target_ids)
    sessions = source.count("django_session")
    if sessions:
        plan.notes.append(f"{sessions} sessions are not copied: everyone signs in again.")
    plan.rows = planner.rows_by_schema()
    return plan


class _Planner:
    """Fills ``rows`` (schema -> table -> rows) family by family; later steps use what earlier
    ones learnt: which schema each tenant gets, who owns each object, which users each schema
    needs."""

    def __init__(self, tables: dict[str, Table], data: dict[str, list[tuple]]):
        self.tables = tables
        self.data = data
        self.public = public_schema()
        self.User = get_user_model()
        self.rows = defaultdict(lambda: defaultdict(list))
        self.schema_of: dict[object, str] = {}  # tenant id -> its schema in the target
        self.owner_of: dict[tuple[str, str], object] = {}  # (model label, pk) -> tenant id
        self.users_of = defaultdict(set)  # schema -> ids of the users it needs

    def table(self, model) -> Table:
        return self.tables[model._meta.db_table]

    # --- tenants and domains ---

    def tenants(self) -> list[dict]:
        """Each tenant and its target schema (the default tenant's is public), checked."""
        table = self.table(Tenant)
        tenants = [self._tenant(table.as_dict(row)) for row in self.data[table.name]]
        if not any(t["default"] for t in tenants):
            raise UpgradeError(f"The source has no default tenant (slug {platform_slug()!r}).")
        shared = {s for s, n in Counter(self.schema_of.values()).items() if n > 1}
        if shared - {self.public}:
            raise UpgradeError(f"Several tenants share the schema name(s) {sorted(shared)}.")
        return tenants

    def _tenant(self, info: dict) -> dict:
        is_default = is_platform_slug(info["slug"])
        schema = self.public if is_default else info["schema_name"]
        if not is_default and (not schema or schema == self.public):
            raise UpgradeError(f"Tenant {info['slug']} has no schema name of its own: {schema!r}.")
        if not is_default and not is_valid_schema_name(schema):
            raise UpgradeError(f"Tenant {info['slug']}: {schema!r} is not a valid schema name.")
        self.schema_of[info["id"]] = schema
        return {
            "id": info["id"],
            "slug": info["slug"],
            "name": info["name"],
            "schema": schema,
            "source_schema": info["schema_name"],
            "default": is_default,
        }

    def tenants_and_domains(self):
        """Every tenant and domain to public, each tenant with its target schema name."""
        table = self.table(Tenant)
        schema_col, id_col = table.index("schema_name"), table.index("id")
        for row in self.data[table.name]:
            row = list(row)
            row[schema_col] = self.schema_of[row[id_col]]
            self.rows[self.public][table.name].append(tuple(row))
        domains = self.table(Domain).name
        self.rows[self.public][domains] = list(self.data[domains])

    # --- tenant-owned rows ---

    def tenant_owned_rows(self):
        """Each to its tenant's schema; remembers who owns which object and which users
        those rows point at."""
        for table in self.tables.values():
            if issubclass(table.model, TenantOwnedModel):
                self._owned_rows(table)

    def _owned_rows(self, table: Table):
        _check_relations(table, self.User)
        tenant_col = table.index(table.model._meta.get_field("tenant").column)
        pk_col = table.index(table.pk)
        label = table.model._meta.label_lower
        user_cols = [
            table.index(f.column)
            for f in table.fields
            if f.is_relation and f.related_model is self.User
        ]
        for row in self.data[table.name]:
            tenant_id = row[tenant_col]
            if tenant_id not in self.schema_of:
                raise UpgradeError(f"A row of {table.name} (id {row[0]}) belongs to no tenant.")
            schema = self.schema_of[tenant_id]
            self.rows[schema][table.name].append(row)
            self.owner_of[(label, str(row[pk_col]))] = tenant_id
            self.users_of[schema].update(row[c] for c in user_cols if row[c] is not None)

    # --- admin log entries ---

    def log_entries(self, source_cts: dict, target_ids: TargetIds) -> list[str]:
        """Each where its object lives, its content type mapped; returns notes."""
        table = self.table(LogEntry)
        ct_col = table.index("content_type_id")
        schemas_of_user = defaultdict(set)  # user id -> schemas whose rows refer to it
        for schema, user_ids in self.users_of.items():
            for user_id in user_ids:
                schemas_of_user[user_id].add(schema)
        unmapped = 0
        for row in self.data[table.name]:
            entry = table.as_dict(row)
            natural = source_cts.get(entry["content_type_id"])
            schema = self._log_entry_schema(entry, natural, schemas_of_user)
            mapped = list(row)
            if entry["content_type_id"] is not None:
                mapped[ct_col] = target_ids.content_types.get(natural)
                unmapped += mapped[ct_col] is None
            self.rows[schema][table.name].append(tuple(mapped))
            self.users_of[schema].add(entry["user_id"])
        if not unmapped:
            return []
        return [
            f"{unmapped} admin log entries name a model that no longer exists; "
            "their content type is left empty."
        ]

    def _log_entry_schema(self, entry: dict, natural, schemas_of_user: dict) -> str:
        label = f"{natural[0]}.{natural[1]}" if natural else None
        # Marked with the tenant whose admin wrote it (accounts.LogEntryTenant), or failing
        # that, the tenant whose object it names.
        tenant_id = self.owner_of.get(("accounts.logentrytenant", str(entry["id"])))
        if tenant_id is None:
            tenant_id = self.owner_of.get((label, str(entry["object_id"])))
        if tenant_id is not None:
            return self.schema_of[tenant_id]
        if natural and _is_tenant_owned(natural):
            # The object is gone: the schema of its author, if the author has just one.
            homes = schemas_of_user.get(entry["user_id"], set()) - {self.public}
            return next(iter(homes)) if len(homes) == 1 else self.public
        return self.public

    # --- users ---

    def users(self):
        """Platform users to public, the users each schema's rows refer to into it."""
        table = self.table(self.User)
        tenant_t = self.table(Tenant)
        owners = {row[tenant_t.index("owner_id")] for row in self.data[tenant_t.name]} - {None}
        in_some_tenant = set().union(*self.users_of.values())
        public_users = self.users_of[self.public]
        for row in self.data[table.name]:
            user = table.as_dict(row)
            if (
                user["is_staff"]
                or user["is_superuser"]
                or user["id"] in owners
                or user["id"] in public_users
                or user["id"] not in in_some_tenant
            ):
                public_users.add(user["id"])
        by_id = {row[table.index("id")]: row for row in self.data[table.name]}
        for schema, user_ids in self.users_of.items():
            self.rows[schema][table.name] = [by_id[i] for i in sorted(user_ids) if i in by_id]

    # --- groups and permissions ---

    def groups_and_permissions(self, source_perms: dict, target_ids: TargetIds) -> list[str]:
        """Each schema's users' groups and grants, with the target's permission ids (public
        gets every group); returns notes."""
        perm_ids = {
            source_id: target_ids.permissions.get(natural)
            for source_id, natural in source_perms.items()
        }
        user_groups = self.table(self.User.groups.through)
        user_perms = self.table(self.User.user_permissions.through)
        group_perms = self.table(Group.permissions.through)
        groups = self.table(Group)
        groups_of_user = _by_column(self.data[user_groups.name], user_groups.index("user_id"))
        user_grants = self._grants(user_perms, "user_id", perm_ids)
        group_grants = self._grants(group_perms, "group_id", perm_ids)
        all_groups = {row[groups.index("id")] for row in self.data[groups.name]}
        for schema, user_ids in self.users_of.items():
            memberships = _pick(groups_of_user, user_ids)
            group_ids = {r[user_groups.index("group_id")] for r in memberships}
            if schema == self.public:
                group_ids = all_groups  # every group lives in public
            rows = self.rows[schema]
            rows[user_groups.name] = memberships
            rows[groups.name] = [r for r in self.data[groups.name] if r[0] in group_ids]
            rows[user_perms.name] = _pick(user_grants, user_ids)
            rows[group_perms.name] = _pick(group_grants, group_ids)
        kept = sum(len(v) for grants in (user_grants, group_grants) for v in grants.values())
        dropped = len(self.data[user_perms.name]) + len(self.data[group_perms.name]) - kept
        if not dropped:
            return []
        return [
            f"{dropped} permission grants name a permission that no longer exists; "
            "they are not copied."
        ]

    def _grants(self, through: Table, holder: str, perm_ids: dict) -> dict:
        """Permission grants by holder (user or group), with the target's permission ids;
        grants of vanished permissions dropped."""
        column = through.index("permission_id")
        mapped = []
        for row in self.data[through.name]:
            target = perm_ids.get(row[column])
            if target is not None:
                mapped.append(row[:column] + (target,) + row[column + 1 :])
        return _by_column(mapped, through.index(holder))

    # --- the result ---

    def rows_by_schema(self) -> dict[str, dict[str, list[tuple]]]:
        """Every schema (every tenant has one, even if empty) with every table it has."""
        for schema in self.schema_of.values():
            self.rows.setdefault(schema, defaultdict(list))
        public_only = public_only_tables()
        result = {}
        for schema, by_table in self.rows.items():
            names = [n for n in self.tables if schema == self.public or n not in public_only]
            stray = [n for n, r in by_table.items() if r and n not in names]
            if stray:
                raise UpgradeError(
                    f"Rows of {', '.join(stray)} would land in tenant schema {schema}."
                )
            result[schema] = {n: list(by_table.get(n, [])) for n in names}
        return result


def _by_column(rows: list[tuple], column: int) -> dict:
    grouped = defaultdict(list)
    for row in rows:
        grouped[row[column]].append(row)
    return grouped


def _pick(grouped: dict, keys) -> list[tuple]:
    """The rows of ``keys``, in primary key (first column) order."""
    return sorted((row for key in keys for row in grouped.get(key, ())), key=lambda r: r[0])


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
        if target is User or target is LogEntry or issubclass(target, TenantOwnedModel):
            continue  # (log entries go to the schema of the tenant that marked them)
        raise UpgradeError(
            f"{table.name}.{f.column} points at {target._meta.label}; "
            "tenants.operations.upgrade does not know how to carry that reference into a tenant "
            "schema."
        )
