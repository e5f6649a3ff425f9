"""Which tenant serves a host: the Domain table, cached per process.

Like ``django.contrib.sites``' SITE_CACHE, lookups live in a module-level dict so a warm request
costs no query. A change to a tenant or domain (the signal handlers in
``tenants.runtime.signals``) clears this process's dict at once and bumps a generation counter
in the database in the same transaction (``tenants.models.Generation``). Every process reads
that counter at most once per ``TENANCY_RESOLVER_REVALIDATE_SECONDS`` and starts over when it
moved: a change made by any process (a command, another worker) reaches every server within that
interval, whatever the cache backend, and no cache outage can affect which tenant a host gets.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from tenants.runtime.context import no_tenant

# Unknown hosts are cached too; the bound stops a flood of random Hosts from growing the process.
# What a cached host costs and what the default bounds the cache to: docs/benchmarks.md
# (benchmarks/home_page.py reports the worker's RSS). Setting: TENANCY_RESOLVER_MAX_HOSTS.
MAX_CACHED_HOSTS = 50_000
_DEFAULT = object()  # key of the default tenant in the cache

_lock = threading.Lock()
_cache: dict[object, object] = {}
_local_version = 0  # bumped on every invalidation; a load that straddles one is not stored
_generation: int | None = None  # the database's counter when this process last read it
_next_check = 0.0  # time.monotonic() from which the counter is due to be read again


def get_tenant_for_host(host: str):
    """The tenant whose Domain is ``host`` (already normalised), or None. Inactive included."""
    if time.monotonic() >= _next_check:
        _revalidate()
    try:
        return _cache[host]
    except KeyError:
        pass
    version = _local_version
    tenant = _load_tenant_for_host(host)
    _store(host, tenant, version)
    return tenant


def is_cached(host: str) -> bool:
    """Whether resolving ``host`` (and the default-tenant fallback) needs no query: no
    revalidation due, and the lookups in the cache."""
    if time.monotonic() >= _next_check:
        return False
    return host in _cache and (_cache[host] is not None or _DEFAULT in _cache)


def get_default_tenant():
    """The tenant named by TENANCY_DEFAULT_TENANT, or None if it does not exist."""
    if time.monotonic() >= _next_check:
        _revalidate()
    try:
        return _cache[_DEFAULT]
    except KeyError:
        pass
    version = _local_version
    tenant = _load_default_tenant()
    _store(_DEFAULT, tenant, version)
    return tenant


def invalidate() -> None:
    """Forget every lookup of this process."""
    global _local_version
    with _lock:
        _local_version += 1
        _cache.clear()


def tenants_changed() -> None:
    """A tenant or domain is changing in the current transaction: forget this process's
    lookups now and again once it commits, and bump the generation in the same transaction so
    that every other process forgets its own within TENANCY_RESOLVER_REVALIDATE_SECONDS.

    Called by the signal handlers; code that writes tenants or domains without signals
    (``bulk_create``, ``update()``) calls it itself.
    """
    from tenants.models import Generation

    invalidate()
    transaction.on_commit(invalidate)
    with no_tenant():  # a platform table: the public schema in schema mode
        if not Generation.objects.filter(pk=1).update(value=F("value") + 1):
            Generation.objects.get_or_create(pk=1)  # the row went missing (a flushed database)


def _store(key, tenant, version) -> None:
    with _lock:
        if version != _local_version:
            return  # invalidated while loading: the value may be stale
        if len(_cache) >= getattr(settings, "TENANCY_RESOLVER_MAX_HOSTS", MAX_CACHED_HOSTS):
            _cache.clear()
        _cache[key] = tenant


def _load_tenant_for_host(host: str):
    from tenants.models import Domain

    with no_tenant():  # the Domain table is platform data (public schema in schema mode)
        domain = Domain.objects.select_related("tenant").filter(domain=host).first()
        if domain is None:
            return None
        tenant = domain.tenant
        if domain.is_primary:
            tenant._primary_domain = domain.domain
        else:
            tenant.primary_domain  # noqa: B018  (look it up while the public schema is visible)
    return tenant


def tenant_exists(tenant) -> bool:
    """Whether ``tenant`` is still in the database (a query, whatever the cache says)."""
    from tenants.models import Tenant

    with no_tenant():
        return Tenant.objects.filter(pk=tenant.pk).exists()


def _load_default_tenant():
    from tenants.models import Tenant

    with no_tenant():
        tenant = Tenant.objects.filter(slug=settings.TENANCY_DEFAULT_TENANT).first()
        if tenant is not None:
            tenant.primary_domain  # noqa: B018
    return tenant


def _revalidate() -> None:
    """Forget every lookup if the generation moved since this process last read it."""
    global _generation, _next_check
    _next_check = time.monotonic() + settings.TENANCY_RESOLVER_REVALIDATE_SECONDS
    generation = _read_generation()
    if generation != _generation:
        invalidate()
        _generation = generation


def _read_generation() -> int | None:
    with no_tenant(), connection.cursor() as cursor:
        cursor.execute("SELECT value FROM tenants_generation WHERE id = 1")
        row = cursor.fetchone()
    return row[0] if row else None
