"""Cells: PostgreSQL servers that hold tenants' data, beside the control database.

The control database (alias ``default``) holds the platform: tenants with their cell
(``Tenant.cell``), domains, platform accounts and the job queue. A tenant's own data lives in
its cell (alias ``cell_<name>``; ``""`` = the control database). Django's multi-database
routing sends every query there: ``CellRouter`` reads the current tenant
(``tenants.runtime.context``) and sends tenant models to its cell and platform models to the
control database (row mode: tenant-owned models that point at no platform table; see
``in_cell``). A cell's connection serves its own tenants only: the schema backend refuses a
cursor for another cell's tenant (``TenantOnAnotherCell``), the row-level security backend sends
no tenant for one (no row admitted). What lives where: docs/cells.md.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from tenants.cellconfig import CONTROL, alias_for_cell
from tenants.conf import schema_mode
from tenants.runtime.context import current_tenant

# Models that live on the control database only, whatever tenant is active.
PLATFORM_APPS = frozenset({"tenants", "django_tasks_db"})


class TenantOnAnotherCell(RuntimeError):
    """A query for the active tenant reached the connection of a cell that does not hold it."""


class UnknownCell(ValueError):
    """A cell name that TENANCY_CELLS does not configure."""


def configured() -> dict[str, str]:
    """Configured cells: name -> alias (empty: one server, no cells)."""
    return getattr(settings, "TENANCY_CELLS", {}) or {}


def enabled() -> bool:
    return bool(configured())


def cell_names() -> list[str]:
    """Every cell a tenant may live in: ``default`` (the control database) and the others."""
    return [CONTROL, *configured()]


def check_cell(name: str) -> str:
    """``name`` normalised (``""`` -> ``default``), or UnknownCell."""
    name = name or CONTROL
    if name != CONTROL and name not in configured():
        raise UnknownCell(f"No cell {name!r}: TENANCY_CELLS has {sorted(configured()) or 'none'}.")
    return name


def alias_of(tenant) -> str:
    """Database alias of ``tenant``'s data."""
    cell = getattr(tenant, "cell", "") or ""
    if not cell:
        return DEFAULT_DB_ALIAS
    return configured().get(cell) or alias_for_cell(cell)


def tenant_alias() -> str:
    """Alias of the current tenant's data (the control database with no tenant active)."""
    tenant = current_tenant()
    return DEFAULT_DB_ALIAS if tenant is None else alias_of(tenant)


@functools.cache
def _row_mode_cell_model(model) -> bool:
    """Row mode: a tenant-owned model none of whose foreign keys (but the tenant's) points at a
    platform table goes to the cell; one that does (``accounts.Membership`` -> a platform
    account, ``accounts.LogEntryTenant`` -> the admin log) stays on the control database with
    what it points at."""
    from tenants.models import TenantOwnedModel

    if not issubclass(model, TenantOwnedModel):
        return False
    for field in model._meta.concrete_fields:
        target = getattr(field, "related_model", None)
        if target is None or target is model or field.name == "tenant":
            continue
        if not _row_mode_cell_model(target):
            return False
    return True


def in_cell(model) -> bool:
    """Whether ``model``'s rows live in the tenant's cell (else on the control database).
    Schema mode: everything but the platform apps (``tenants``, ``django_tasks_db``)."""
    if model._meta.app_label in PLATFORM_APPS:
        return False
    return True if schema_mode() else _row_mode_cell_model(model)


def _tenant_model():
    from tenants.models import Tenant

    return Tenant


class CellRouter:
    """Platform models to the control database; everything else to the current tenant's cell.

    Listed before django-tenants' TenantSyncRouter, which decides what is migrated where
    (shared apps in each database's public schema, tenant apps in tenant schemas).
    """

    def _route(self, model, **hints):
        if not in_cell(model):
            return DEFAULT_DB_ALIAS
        tenant = current_tenant()
        return DEFAULT_DB_ALIAS if tenant is None else alias_of(tenant)

    db_for_read = _route
    db_for_write = _route

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        """On a cell, what django-tenants allows on the control database (which it alone
        knows): shared apps in its public schema, tenant apps in tenant schemas. Row mode:
        every table, like the control database (the cell's copies of platform tables stay
        empty)."""
        if db == DEFAULT_DB_ALIAS or db not in configured().values():
            return None
        if not schema_mode():
            return None
        from django_tenants.routers import TenantSyncRouter

        public = connections[db].schema_name == settings.PUBLIC_SCHEMA_NAME
        apps = settings.SHARED_APPS if public else settings.TENANT_APPS
        return TenantSyncRouter().app_in_list(app_label, apps)

    def allow_relation(self, obj1, obj2, **hints):
        # A tenant-owned row's ``tenant`` is a bare id (no database constraint,
        # decision 0001): it may point from a cell at the control database's Tenant.
        Tenant = _tenant_model()
        if isinstance(obj1, Tenant) or isinstance(obj2, Tenant):
            return True
        return obj1._state.db == obj2._state.db or None


# --- Health ------------------------------------------------------------------------------------


@dataclass
class CellHealth:
    name: str
    alias: str
    reachable: bool
    latency_ms: float | None
    error: str = ""


def health(name: str, timeout: float = 2.0) -> CellHealth:
    """Connect to the cell anew and run ``SELECT 1``: reachable, and how long it took."""
    from tenants import postgres

    alias = alias_for_cell(name)
    started = time.perf_counter()
    try:
        with postgres.connect(alias, connect_timeout=max(1, round(timeout))) as conn:
            conn.execute("SELECT 1")
    except Exception as error:  # any failure to answer is "down", with the reason
        return CellHealth(name, alias, False, None, postgres.describe_error(error))
    return CellHealth(name, alias, True, (time.perf_counter() - started) * 1000)


def tenant_counts() -> dict[str, int]:
    """Tenants per cell (every cell listed, ``default`` for the control database)."""
    from django.db.models import Count

    from tenants.models import Tenant
    from tenants.runtime.context import no_tenant

    counts = dict.fromkeys(cell_names(), 0)
    with no_tenant():
        for row in Tenant.objects.values("cell").annotate(n=Count("pk")).order_by():
            counts[row["cell"] or CONTROL] = counts.get(row["cell"] or CONTROL, 0) + row["n"]
    return counts


# --- Placement ---------------------------------------------------------------------------------


class NoCellAvailable(RuntimeError):
    """The pinned cell is down."""


def place(pinned: str | None = None) -> str:
    """The cell a new tenant goes to: ``pinned`` if given (and up), else the reachable
    configured cell with the fewest tenants that holds fewer than TENANCY_CELL_MAX_TENANTS; the
    control database when no cell is configured or every cell is down or full (sign-ups keep
    working)."""
    if pinned:
        name = check_cell(pinned)
        if name != CONTROL and not health(name).reachable:
            raise NoCellAvailable(f"Cell {name!r} is not reachable.")
        return name
    if not enabled():
        return CONTROL
    counts = tenant_counts()
    limit = settings.TENANCY_CELL_MAX_TENANTS
    for name in sorted(configured(), key=lambda n: (counts.get(n, 0), n)):
        if limit and counts.get(name, 0) >= limit:
            continue  # full (docs/cells-capacity.md); pinning still may go past it
        if health(name).reachable:
            return name
    return CONTROL


def connection_for(name: str):
    """Django's connection to cell ``name``."""
    return connections[alias_for_cell(check_cell(name))]


def delete_cell_rows(tenant) -> int:
    """Row mode: delete ``tenant``'s rows in its cell (run in its context, scopes disabled, as
    ``Tenant.delete()`` does); returns how many."""
    from django.apps import apps
    from django.db import transaction

    from tenants.models import TenantOwnedModel

    using = alias_of(tenant)
    deleted = 0
    with transaction.atomic(using=using):
        for model in apps.get_models():
            if issubclass(model, TenantOwnedModel) and in_cell(model):
                deleted += model._base_manager.using(using).filter(tenant_id=tenant.pk).delete()[0]
    return deleted
