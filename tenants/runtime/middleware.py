"""Resolve the tenant from the Host and make it current for the whole request."""

import functools

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse
from django.template.loader import render_to_string

from tenants.runtime import resolution, unavailable
from tenants.runtime.context import activate, deactivate
from tenants.runtime.hosts import accept_host, reset_accepted_host
from tenants.runtime.normalize import parse_host_header


class TenantMiddleware:
    """Sets ``request.tenant`` and the current tenant context; must be the first middleware.

    * the Host is normalised (case, port, trailing dot, IDN) and looked up in the Domain table
      (cached, see tenants.runtime.resolution);
    * an unknown host gets the default tenant or a 404, by ``TENANCY_UNKNOWN_HOST``;
    * an inactive tenant gets a clear 403 page; a malformed Host a 400 — never a 500;
    * a database that is unavailable (down, restarting, a statement timeout), whether in the
      host lookup or anywhere in the view, gets the 503 page (tenants.runtime.unavailable);
    * the accepted host is the only one Django's ``get_host()`` will accept for this request, and
      for a fallback request it is the default tenant's own domain, never the raw Host.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        # A worker sees the same Host headers over and over: parse each once. Bounded like the
        # resolver's host cache (TENANCY_RESOLVER_MAX_HOSTS); a flood of random Hosts only evicts.
        self.parse_host = functools.lru_cache(maxsize=settings.TENANCY_RESOLVER_MAX_HOSTS)(
            parse_host_header
        )
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        host_key, host, port = _request_host(request, self.parse_host)
        outcome = _resolve_or_unavailable(request, host)
        if isinstance(outcome, HttpResponse):
            return outcome
        tokens = _enter_request(request, outcome, host_key, port)
        try:
            return self.get_response(request)
        finally:
            _exit_request(tokens)

    def process_exception(self, request, exception):
        """The database is unavailable (any alias): the 503 page. Otherwise a tenant deleted
        since this process looked its host up (before the next revalidation, see
        tenants.runtime.resolution) may have lost its schema: its queries fail. That is "site
        not found", never a 500. An outage is never taken for a deleted tenant."""
        if unavailable.is_unavailable(exception):
            if unavailable.moved_away(exception):
                resolution.invalidate()  # the tenant is on another cell now: look it up again
            return unavailable.response(request, exception)
        tenant = getattr(request, "tenant", None)
        if tenant is None or not isinstance(exception, DatabaseError):
            return None
        try:
            if resolution.tenant_exists(tenant):
                return None
        except DatabaseError as error:
            if unavailable.is_unavailable(error):
                return unavailable.response(request, error)
            return None  # the database itself is failing: nothing to say about the tenant
        resolution.invalidate()
        return _error_page(404, "Site not found", "No site is configured for this address.")

    async def __acall__(self, request):
        host_key, host, port = _request_host(request, self.parse_host)
        outcome = _resolve_cached(host)
        if outcome is None:  # cold cache: the lookup needs the database, off the event loop
            outcome = await sync_to_async(_resolve_or_unavailable)(request, host)
        if isinstance(outcome, HttpResponse):
            return outcome
        tokens = _enter_request(request, outcome, host_key, port)
        try:
            return await self.get_response(request)
        finally:
            _exit_request(tokens)


def _request_host(request, parse_host):
    meta = request.META
    if settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in meta:
        key = "HTTP_X_FORWARDED_HOST"
    else:
        key = "HTTP_HOST"
    host, port = parse_host(meta.get(key) or meta.get("SERVER_NAME") or "")
    return key, host, port


def _resolve_cached(host):
    """The outcome if it is known without the database, else None."""
    if host is not None and not resolution.is_cached(host):
        return None
    return _resolve(host)


def _resolve_or_unavailable(request, host):
    """_resolve(), or the 503 page when the database it needs is unavailable."""
    try:
        return _resolve(host)
    except DatabaseError as error:
        if not unavailable.is_unavailable(error):
            raise
        return unavailable.response(request, error)


def _resolve(host):
    """(tenant, host to serve as) for a normalised host, or the error response to send."""
    if host is None:
        return _error_page(400, "Bad request", "The request's Host header is not a valid host.")
    tenant = resolution.get_tenant_for_host(host)
    if tenant is None:
        if settings.TENANCY_UNKNOWN_HOST == "404":
            return _error_page(404, "Site not found", "No site is configured for this address.")
        tenant = resolution.get_default_tenant()
        if tenant is None or not tenant.primary_domain:
            return _error_page(
                404,
                "Site not found",
                "No site is configured for this address, and there is no default site.",
            )
        host = tenant.primary_domain  # absolute URLs use the default's domain, not the raw Host
    return _outcome_for(tenant, host)


def _outcome_for(tenant, host):
    if not tenant.is_active:
        return _error_page(403, "Site unavailable", f"{tenant.name} is not active at the moment.")
    return tenant, host


def _enter_request(request, outcome, host_key, port):
    """request.tenant, the tenant context and the accepted host (the Host header rewritten to
    the normalised host it was resolved as); returns what _exit_request() resets. Two plain
    calls rather than context managers: this runs on every request."""
    tenant, host = outcome
    request.tenant = tenant
    request.META[host_key] = f"{host}:{port}" if port else host
    host_token = accept_host(host)
    return host_token, activate(tenant)


def _exit_request(tokens):
    host_token, context_tokens = tokens
    try:
        deactivate(context_tokens)
    finally:
        reset_accepted_host(host_token)


def _error_page(status, title, message):
    body = render_to_string("tenants/error.html", {"title": title, "message": message})
    return HttpResponse(body, status=status)
