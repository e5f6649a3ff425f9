"""Which tenant serves a host: the Domain table, cached per process.

Like ``django.contrib.sites``' SITE_CACHE, lookups live in a module-level dict so a warm request
costs no query, and the signal handlers in ``tenants.runtime.signals`` clear it when a tenant
or domain changes. Other processes learn of a change through a generation token in the
``tenancy`` cache (shared when it is Redis), checked at most every
``TENANCY_RESOLVER_REVALIDATE_SECONDS``.
"""

from __future__ import annotations

import threading
import time
import uuid

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.signals import setting_changed
from django.db import transaction
from django.dispatch import receiver
from django.utils.module_loading import import_string

from tenants.runtime.context import no_tenant

# Unknown hosts are cached too; the bound stops a flood of random Hosts from growing the process.
# What a cached host costs and what the default bounds the cache to: docs/benchmarks.md
# (benchmarks/home_page.py reports the worker's RSS). Setting: TENANCY_RESOLVER_MAX_HOSTS.
MAX_CACHED_HOSTS = 50_000
_GENERATION_KEY = "resolver-generation"
_DEFAULT = object()  # key of the default tenant in the cache

_lock = threading.Lock()
_cache: dict[object, object] = {}
_local_version = 0  # bumped on every invalidation; a load that straddles one is not stored
_shared_generation: str | None = None
_checked_at = 0.0
_remote: bool | None = None  # whether the tenancy cache is shared (not local memory); None: unknown


def get_tenant_for_host(host: str):
    """The tenant whose Domain is ``host`` (already normalised), or None. Inactive included."""
    if _remote is not False:  # with a local-memory cache no other process can invalidate
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
    """Whether resolving ``host`` (and the default-tenant fallback) needs no query."""
    _revalidate()
    return host in _cache and (_cache[host] is not None or _DEFAULT in _cache)


def get_default_tenant():
    """The tenant named by TENANCY_DEFAULT_TENANT, or None if it does not exist."""
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
    """Forget every lookup here, and tell other processes to do the same."""
    global _local_version, _shared_generation
    with _lock:
        _local_version += 1
        _cache.clear()
    if _shared_cache_is_remote():
        token = uuid.uuid4().hex
        caches["tenancy"].set(_GENERATION_KEY, token, timeout=None)
        _shared_generation = token


def invalidate_on_commit() -> None:
    """Invalidate now (this process) and again once the change is committed (everyone)."""
    invalidate()
    transaction.on_commit(invalidate)


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


def _load_default_tenant():
    from tenants.models import Tenant

    with no_tenant():
        tenant = Tenant.objects.filter(slug=settings.TENANCY_DEFAULT_TENANT).first()
        if tenant is not None:
            tenant.primary_domain  # noqa: B018
    return tenant


def _shared_cache_is_remote() -> bool:
    global _remote
    if _remote is None:
        backend = import_string(settings.CACHES["tenancy"]["BACKEND"])
        _remote = not issubclass(backend, LocMemCache)
    return _remote


@receiver(setting_changed)
def _forget_cache_backend(setting, **kwargs):
    global _remote
    if setting == "CACHES":
        _remote = None


def _revalidate() -> None:
    """Drop local lookups if another process invalidated them (shared cache only)."""
    global _checked_at, _shared_generation
    if not _shared_cache_is_remote():
        return
    now = time.monotonic()
    if now - _checked_at < settings.TENANCY_RESOLVER_REVALIDATE_SECONDS:
        return
    _checked_at = now
    generation = caches["tenancy"].get(_GENERATION_KEY)
    if generation != _shared_generation:
        global _local_version
        with _lock:
            _local_version += 1
            _cache.clear()
        _shared_generation = generation
