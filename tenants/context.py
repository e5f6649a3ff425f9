"""The current tenant: one context variable, the single source of truth in both modes.

A ``ContextVar`` is correct under threads and under ASGI (asgiref copies the context into the
threads that run sync code), unlike state kept on the database connection. Row mode reads it
through django-scopes (the scoped managers); schema mode reads it in the database backend when a
cursor is made, to pick the ``search_path``.

``with tenant_context(tenant):`` activates a tenant; ``with scopes_disabled():`` (django-scopes)
is the explicit, greppable escape hatch for platform code that must see every tenant's rows.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from django_scopes import scope, scopes_disabled

if TYPE_CHECKING:
    from tenants.models import Tenant

__all__ = ["current_tenant", "tenant_context", "no_tenant", "scopes_disabled"]

_current: ContextVar[Tenant | None] = ContextVar("current_tenant", default=None)


def current_tenant() -> Tenant | None:
    """The tenant active in this context, or None."""
    return _current.get()


@contextmanager
def tenant_context(tenant: Tenant):
    """Make ``tenant`` the current tenant for the block (queries, cache keys, schema)."""
    if tenant is None or tenant.pk is None:
        # django-scopes treats a None scope value as "no filter": never let that happen.
        raise ValueError("tenant_context() needs a saved tenant")
    token = _current.set(tenant)
    try:
        with scope(tenant=tenant.pk):
            yield tenant
    finally:
        _current.reset(token)


@contextmanager
def no_tenant():
    """Run the block with no tenant active: tenant-owned queries fail closed (platform code)."""
    token = _current.set(None)
    try:
        with scope():
            yield
    finally:
        _current.reset(token)
