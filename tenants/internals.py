"""Every private part of Django, django-tenants and django-scopes this project leans on.

Each fast path below exists because the public API costs measurably more on every request
(docs/decisions/; the instruction counts of ``scripts/bench instructions``), or because the
public API has no equivalent. None of these internals is promised to stay, so they are all
here, each with a check in :data:`BORROWED` that says what we expect of it.
``tests/runtime/test_internals.py`` runs every check: after an upgrade of Django,
django-tenants or django-scopes it fails with the name of what changed, instead of tenants
quietly losing their row filter. ``pyproject.toml`` pins each library to the versions those
checks have passed on.

What is borrowed, and where it is used:

* ``Lookup.__init__`` skipped (``TenantIs``): the tenant condition of every tenant-owned query
  (``tenants.runtime.scoping``).
* ``Model._state.fields_cache`` (``ForeignKeyIdAttribute``): the ``tenant_id`` attribute.
* ``django.contrib.auth.management._get_all_permissions``: the permissions fleet migrations
  insert as SQL (``tenants.operations.fleet``).
* ``Signal._live_receivers``: which ``pre/post_migrate`` handlers would run
  (``tenants.operations.fleet``).
* django-tenants' backend: ``_handle_search_path``, ``_setting_search_path``,
  ``search_path_set_schemas``, ``_get_cursor_search_paths``, ``_check_schema_name``
  (``tenants.backends.postgresql``).
* django-scopes: its ContextVar ``django_scopes.state.state`` and ``DisabledQuerySet``
  (``tenants.runtime.context``, ``tenants.runtime.scoping``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.management import _get_all_permissions
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.fields.related_lookups import RelatedExact
from django_scopes.manager import DisabledQuerySet
from django_scopes.state import state as scopes_state

__all__ = [
    "BORROWED",
    "DisabledQuerySet",
    "ForeignKeyIdAttribute",
    "TenantIs",
    "all_permissions",
    "live_receivers",
    "scopes_state",
    "verify",
]


class TenantIs(RelatedExact):
    """``"alias"."tenant_id" = %s`` for an integer tenant pk: the SQL Django's related exact
    lookup makes for it (tests compare the two), without ``Lookup.__init__``'s type checks and
    cast dispatch, which every tenant-owned query would pay."""

    # A column compared with an int: no aggregate, no window function. Constants instead of
    # the expression-tree walk Django caches per query for each (every query asks).
    contains_aggregate = False
    contains_over_clause = False

    def __init__(self, lhs, rhs):
        # What Lookup.__init__ ends with for a column and an int, without its checks.
        self.lhs, self.rhs, self.bilateral_transforms = lhs, rhs, []

    def as_sql(self, compiler, connection):
        # What compiling the column (a Col, relabelled with the query) gives.
        quote = compiler.quote_name_unless_alias
        return f"{quote(self.lhs.alias)}.{quote(self.lhs.target.column)} = %s", [self.rhs]


class ForeignKeyIdAttribute(ForeignKeyDeferredAttribute):
    """A foreign key's id attribute (``obj.tenant_id``): a new id forgets the cached related
    object, as Django's does, but a row being loaded does not create an empty cache to look
    into (Django's ``__set__`` asks ``is_cached()``, which makes one)."""

    def __set__(self, instance, value):
        cache = instance._state.__dict__.get("fields_cache")
        if (
            cache
            and self.field.name in cache
            and instance.__dict__.get(self.field.attname) != value
        ):
            del cache[self.field.name]
        instance.__dict__[self.field.attname] = value


def all_permissions(opts) -> list[tuple[str, str]]:
    """(codename, name) of every permission ``create_permissions`` makes for a model."""
    return _get_all_permissions(opts)


def live_receivers(signal) -> list[Callable]:
    """The synchronous receivers ``signal.send(sender=None)`` would call."""
    return signal._live_receivers(None)[0]


# --- What we expect of each, checked by tests ----------------------------------------------------


@dataclass(frozen=True)
class Borrowed:
    library: str
    what: str
    check: Callable[[], object]


def _lookup_init_sets_only_what_tenantis_sets():
    from django.db.models import Lookup

    source = inspect.getsource(Lookup.__init__)
    for attribute in ("self.lhs", "self.rhs", "self.bilateral_transforms"):
        assert attribute in source, f"Lookup.__init__ no longer sets {attribute}"
    assigned = {
        target.strip()
        for line in source.splitlines()
        if line.strip().startswith("self.") and "=" in line and "==" not in line
        for target in line.split("=")[0].split(",")
    }
    extra = assigned - {"self.lhs", "self.rhs", "self.bilateral_transforms"}
    assert not extra, f"Lookup.__init__ now also sets {sorted(extra)}: TenantIs must too"


def _compiler_quotes_aliases():
    from django.db.models.sql.compiler import SQLCompiler

    assert callable(SQLCompiler.quote_name_unless_alias)


def _fields_cache_is_a_dict_on_state():
    from django.db.models.base import ModelState

    state = ModelState()
    assert "fields_cache" not in state.__dict__, "ModelState now makes fields_cache eagerly"
    assert isinstance(state.fields_cache, dict), "ModelState.fields_cache is not a dict"
    assert "fields_cache" in state.__dict__, "ModelState.fields_cache is no longer cached"


def _get_all_permissions_signature():
    params = list(inspect.signature(_get_all_permissions).parameters)
    assert params == ["opts"], f"_get_all_permissions takes {params}"


def _live_receivers_returns_sync_and_async():
    from django.dispatch import Signal

    signal = Signal()

    def handler(**kwargs):
        return None

    signal.connect(handler, weak=False)
    found = signal._live_receivers(None)
    assert isinstance(found, tuple) and len(found) == 2, "_live_receivers no longer (sync, async)"
    assert found[0] == [handler], "_live_receivers()[0] is not the sync receivers"


def _django_tenants_backend_hooks():
    from django_tenants.postgresql_backend import base

    wrapper = base.DatabaseWrapper
    for name in ("_handle_search_path", "_get_cursor_search_paths", "set_schema"):
        assert callable(getattr(wrapper, name, None)), f"django-tenants' backend lost {name}()"
    source = inspect.getsource(wrapper)
    for name in ("_setting_search_path", "search_path_set_schemas", "include_public_schema"):
        assert name in source, f"django-tenants' backend no longer uses {name}"
    handle = inspect.getsource(wrapper._handle_search_path)
    assert "_get_cursor_search_paths" in handle, (
        "django-tenants' _handle_search_path no longer asks _get_cursor_search_paths()"
    )
    assert callable(base._check_schema_name), "django-tenants lost _check_schema_name()"


def _django_scopes_state():
    from contextvars import ContextVar

    assert isinstance(scopes_state, ContextVar), "django_scopes.state.state is not a ContextVar"
    for name in ("error", "missing_scopes"):
        assert name in inspect.getsource(DisabledQuerySet), f"DisabledQuerySet lost {name}"


BORROWED = [
    Borrowed("Django", "Lookup.__init__ sets lhs, rhs, bilateral_transforms only", _lookup_init_sets_only_what_tenantis_sets),  # noqa: E501
    Borrowed("Django", "SQLCompiler.quote_name_unless_alias", _compiler_quotes_aliases),
    Borrowed("Django", "Model._state.fields_cache, a lazily made dict", _fields_cache_is_a_dict_on_state),  # noqa: E501
    Borrowed("Django", "auth.management._get_all_permissions(opts)", _get_all_permissions_signature),  # noqa: E501
    Borrowed("Django", "Signal._live_receivers(sender) -> (sync, async)", _live_receivers_returns_sync_and_async),  # noqa: E501
    Borrowed("django-tenants", "the backend's search_path hooks", _django_tenants_backend_hooks),
    Borrowed("django-scopes", "state ContextVar and DisabledQuerySet", _django_scopes_state),
]  # fmt: skip


def verify() -> list[str]:
    """What no longer holds, one line each naming the library and the internal; [] if all do."""
    problems = []
    for borrowed in BORROWED:
        try:
            borrowed.check()
        except Exception as error:  # an AssertionError, or the internal is gone altogether
            problems.append(f"{borrowed.library}: {borrowed.what}: {error}")
    return problems
