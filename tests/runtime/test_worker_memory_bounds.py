"""What a worker process keeps per tenant or per Host is bounded by settings."""

import pytest

from tenants.runtime import resolution

pytestmark = pytest.mark.django_db


def test_host_lookup_cache_never_exceeds_its_bound(settings, tenants):
    settings.TENANCY_RESOLVER_MAX_HOSTS = 5
    for n in range(40):  # a flood of Hosts nobody configured
        assert resolution.get_tenant_for_host(f"random-{n}.example") is None
        assert len(resolution._cache) <= 5
    # Evicted lookups come back from the database, still right.
    assert resolution.get_tenant_for_host("acme.localhost") == tenants["acme"]
    assert resolution.get_tenant_for_host("global.localhost") == tenants["global"]
    assert len(resolution._cache) <= 5


def test_parsed_host_headers_never_exceed_the_host_bound(settings, tenants):
    from django.http import HttpResponse
    from django.test import RequestFactory

    from tenants.runtime.middleware import TenantMiddleware

    settings.TENANCY_RESOLVER_MAX_HOSTS = 5
    middleware = TenantMiddleware(lambda request: HttpResponse(request.tenant.slug))
    for n in range(40):
        middleware(RequestFactory().get("/", HTTP_HOST=f"random-{n}.example:8000"))
        assert middleware.parse_host.cache_info().currsize <= 5
    response = middleware(RequestFactory().get("/", HTTP_HOST="ACME.localhost.:8000"))
    assert response.content == b"acme"
