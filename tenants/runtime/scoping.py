"""The fail-closed manager of tenant-owned models: every query filtered by the current tenant.

``TenantOwnedModel`` (``tenants.models``) uses these. With a tenant active every query is
filtered by it, in schema mode too (a second wall behind the schema:
docs/decisions/0006-row-filter-kept-in-schema-mode.md). With none, queries raise
``django_scopes.ScopeError`` unless the caller opted out with ``with scopes_disabled():``.
"""

from __future__ import annotations

from django.db import models
from django.db.models.fields.related_descriptors import ForwardManyToOneDescriptor
from django.db.models.sql.where import AND
from django_scopes import ScopedManager

from tenants.internals import DisabledQuerySet, TenantIs
from tenants.runtime.context import active_scope, current_tenant


class TenantRequired(Exception):
    """Tenant-owned data was written with no tenant active (fail closed)."""


class CrossTenantWrite(Exception):
    """An object of one tenant was saved while another tenant is active."""


class FailClosedQuerySet(DisabledQuerySet):
    """django-scopes' no-scope queryset, also closing what it leaves open.

    Upstream ``DisabledQuerySet`` still runs ``exists()``, ``contains()``, ``explain()`` and
    bulk writes without a filter; with no tenant active those would see every tenant's rows.
    """

    exists = DisabledQuerySet.error
    contains = DisabledQuerySet.error
    explain = DisabledQuerySet.error
    in_bulk = DisabledQuerySet.error
    bulk_create = DisabledQuerySet.error
    bulk_update = DisabledQuerySet.error


class TenantQuerySet(models.QuerySet):
    def select_related(self, *fields):
        """``select_related()`` with no fields follows every FK but ``tenant``: the tenant is the
        active one already (no join needed), and in schema mode its table is not on the
        tenant's search_path. The admin calls it this way for FKs in ``list_display``."""
        if not fields:
            fields = [
                f.name
                for f in self.model._meta.concrete_fields
                if f.is_relation and not f.null and f.name != "tenant"
            ]
            if not fields:
                return self._chain()
        return super().select_related(*fields)

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for obj in objs:
            obj.assign_current_tenant()
        return super().bulk_create(objs, *args, **kwargs)


_ScopedBase = type(
    ScopedManager(tenant="tenant", _manager_class=TenantQuerySet.as_manager().__class__)
)


class TenantManager(_ScopedBase):
    """Default manager of tenant-owned models: scoped to the current tenant, fail closed."""

    def get_queryset(self):
        scope = self._override_scope if hasattr(self, "_override_scope") else active_scope() or {}
        tenant_pk = scope.get("tenant")
        if scope.get("_enabled", True) and isinstance(tenant_pk, int):
            # The common case, one tenant active: what django-scopes' .filter(tenant=pk) adds,
            # without the queryset clone and lookup resolution it costs on every query.
            queryset = super(_ScopedBase, self).get_queryset()
            add_tenant_condition(queryset.query, self.model, tenant_pk)
            return queryset
        queryset = super().get_queryset()
        if isinstance(queryset, DisabledQuerySet):
            return FailClosedQuerySet(
                self.model, using=self._db, missing_scopes=queryset.missing_scopes
            )
        return queryset


def add_tenant_condition(query, model, tenant_pk) -> None:
    """Add ``tenant = tenant_pk`` to a fresh query, in place: the WHERE node that
    ``.filter(tenant=tenant_pk)`` would build, on the table's own alias."""
    field = model._meta.get_field("tenant")
    alias = query.get_initial_alias()
    query.where.add(TenantIs(field.get_col(alias), tenant_pk), AND)


class CurrentTenantDescriptor(ForwardManyToOneDescriptor):
    """``obj.tenant`` is the active tenant object when it matches: no query, and in schema mode
    no need to see the public schema's tenant table from a tenant's search_path."""

    def __get__(self, instance, cls=None):
        if instance is not None and not self.is_cached(instance):
            tenant = current_tenant()
            if tenant is not None and tenant.pk == getattr(instance, self.field.attname):
                self.field.set_cached_value(instance, tenant)
        return super().__get__(instance, cls)
