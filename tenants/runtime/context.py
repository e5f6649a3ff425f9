"""The current tenant: one context variable, the single source of truth in both modes.

A ``ContextVar`` is correct under threads and under ASGI (asgiref copies the context into the
threads that run sync code), unlike state kept on the database connection. Row mode reads it
through django-scopes (the scoped managers); schema mode reads it in the database backend when a
cursor is made, to pick the ``search_path``. The decision:
docs/decisions/0005-contextvar-is-the-current-tenant.md.

``with tenant_context(tenant):`` activates a tenant; ``with scopes_disabled():`` (django-scopes)
is the explicit, greppable escape hatch for platform code that must see every tenant's rows.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

from django_scopes import scopes_disabled

from tenants.internals import scopes_state as _scopes

if TYPE_CHECKING:
    from tenants.models import Tenant

__all__ = [
    "activate",
    "active_scope",
    "current_tenant",
    "deactivate",
    "no_tenant",
    "scopes_disabled",
    "tenant_context",
]

_current: ContextVar[Tenant | None] = ContextVar("current_tenant", default=None)

# The tenant active in this context, or None. Called on every query, cache key and template
# lookup of a request: the context variable's own (C) getter, not a Python function around it.
current_tenant = _current.get
# django-scopes' active scope (a dict), or None if none was entered in this context.
active_scope = _scopes.get


class tenant_context:
    """``with tenant_context(tenant):`` makes ``tenant`` the current tenant for the block
    (queries, cache keys, schema), and django-scopes' scope with it.

    A class over ``activate()``/``deactivate()`` (which the middleware calls directly) rather
    than a generator-based context manager: a fraction of the cost of ``@contextmanager`` +
    ``django_scopes.scope()``, paid around every request and task.
    """

    __slots__ = ("tenant", "_tokens")

    def __init__(self, tenant: Tenant):
        if tenant is None or tenant.pk is None:
            # django-scopes treats a None scope value as "no filter": never let that happen.
            raise ValueError("tenant_context() needs a saved tenant")
        self.tenant = tenant

    def __enter__(self) -> Tenant:
        self._tokens = activate(self.tenant)
        return self.tenant

    def __exit__(self, *exc_info) -> None:
        deactivate(self._tokens)


class no_tenant:
    """``with no_tenant():`` runs the block with no tenant active: tenant-owned queries fail
    closed (platform code)."""

    __slots__ = ("_tokens",)

    def __enter__(self) -> None:
        self._tokens = activate(None)

    def __exit__(self, *exc_info) -> None:
        deactivate(self._tokens)


def activate(tenant):
    """Make ``tenant`` (or no tenant) current, here and in django-scopes' scope: what
    ``django_scopes.scope(tenant=pk)`` sets, except that no tenant removes an enclosing one.
    Returns the tokens ``deactivate()`` needs; prefer ``with tenant_context(...)``, which
    cannot forget to call it."""
    enclosing = _scopes.get()
    scope = {**enclosing, "_enabled": True} if enclosing else {"_enabled": True}
    if tenant is None:
        scope.pop("tenant", None)
    else:
        scope["tenant"] = tenant.id  # .id, not .pk: the pk property is a call on every request
    return _current.set(tenant), _scopes.set(scope)


def deactivate(tokens) -> None:
    """Undo ``activate()``: the tenant and scope active before it are active again."""
    current_token, scope_token = tokens
    _scopes.reset(scope_token)
    _current.reset(current_token)
