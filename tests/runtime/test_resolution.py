"""Host -> tenant resolution: normalisation, fallback policy, inactive tenants, bad Hosts."""

import pytest
from django.test import override_settings

from tenants.models import Domain
from tenants.runtime import resolution
from tenants.runtime.context import scopes_disabled
from tenants.runtime.normalize import normalize_host
from tests.support.demo import DEMO_HOSTS

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("acme.localhost", "acme.localhost"),
        ("ACME.LocalHost", "acme.localhost"),
        ("acme.localhost:8000", "acme.localhost"),
        ("acme.localhost.", "acme.localhost"),
        ("ACME.localhost.:8000", "acme.localhost"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("127.0.0.1:8000", "127.0.0.1"),
        ("[::1]:8000", "[::1]"),
        ("", None),
        ("..", None),
        ("a..b", None),
        ("-acme.localhost", None),
        ("acme.localhost:port", None),
        ("acme.localhost/evil", None),
        ("acme localhost", None),
        ("x" * 300, None),
        ("acme.localhost'; DROP TABLE tenants_tenant;--", None),
        ("999.1.1.1", None),
    ],
)
def test_normalize_host(raw, expected):
    assert normalize_host(raw) == expected


@pytest.mark.parametrize(
    "host", ["acme.localhost", "ACME.LOCALHOST", "acme.localhost:8000", "acme.localhost."]
)
def test_variants_of_a_domain_reach_its_tenant(host_client, host):
    response = host_client(host).get("/")
    assert response.status_code == 200
    assert response.context["request"].tenant.slug == "acme"
    assert b"Welcome to Acme Corporation" in response.content


@pytest.mark.parametrize("slug, host", DEMO_HOSTS.items())
def test_each_demo_host_resolves_to_its_tenant(host_client, slug, host):
    response = host_client(host).get("/")
    assert response.status_code == 200
    assert response.context["request"].tenant.slug == slug


@pytest.mark.urls("tests.support.probe_urls")
def test_unknown_host_falls_back_to_default_tenant(host_client):
    response = host_client("nobody.example:8000").get("/whoami/")
    # Absolute URLs use the default tenant's own domain, never the unknown Host.
    assert response.json() == {
        "tenant": "default",
        "host": "localhost:8000",
        "absolute": "http://localhost:8000/x",
    }


@override_settings(TENANCY_UNKNOWN_HOST="404")
def test_unknown_host_is_404_by_setting(host_client):
    response = host_client("nobody.example").get("/")
    assert response.status_code == 404
    assert b"No site is configured for this address" in response.content
    assert host_client("acme.localhost").get("/").status_code == 200


@pytest.mark.parametrize("host", ["", "bad host", "a" * 5000, "acme.localhost:99999999", "é..x"])
def test_malformed_or_hostile_host_is_a_clear_4xx(host_client, host):
    response = host_client(host).get("/")
    assert 400 <= response.status_code < 500 or response.status_code == 200
    if host == "":
        # No Host at all (HTTP/1.0 style): treated as an unknown host.
        assert response.status_code == 200
    else:
        assert response.status_code == 400
        assert b"Host header is not a valid host" in response.content


def test_inactive_tenant_gets_a_clear_page(host_client, tenants):
    tenant = tenants["techinnov"]
    tenant.is_active = False
    tenant.save()
    response = host_client("techinnov.localhost").get("/")
    assert response.status_code == 403
    assert b"Tech Innovations is not active" in response.content


def test_warm_lookup_costs_no_query(host_client, django_assert_num_queries):
    client = host_client("acme.localhost")
    client.get("/")  # warm
    with django_assert_num_queries(1):  # the page's own content query only
        client.get("/")


def test_cache_follows_a_domain_moving_to_another_tenant(host_client, tenants):
    client = host_client("shop.example")
    Domain.objects.create(domain="shop.example", tenant=tenants["acme"], is_primary=False)
    assert client.get("/").context["request"].tenant.slug == "acme"
    with scopes_disabled():
        domain = Domain.objects.get(domain="shop.example")
    domain.tenant = tenants["global"]
    domain.save()
    assert client.get("/").context["request"].tenant.slug == "global"
    domain.delete()
    assert client.get("/").context["request"].tenant.slug == "default"


def test_domains_are_stored_normalised(tenants):
    domain = Domain.objects.create(domain="Shop.Example.", tenant=tenants["acme"], is_primary=False)
    assert domain.domain == "shop.example"
    assert resolution.get_tenant_for_host("shop.example").slug == "acme"


@pytest.mark.urls("tests.support.probe_urls")
def test_get_host_is_the_normalised_resolved_host(host_client):
    response = host_client("ACME.localhost.:8000").get("/whoami/")
    assert response.json()["host"] == "acme.localhost:8000"
    assert response.json()["tenant"] == "acme"


def test_get_host_outside_a_request_accepts_nothing(rf):
    from django.core.exceptions import DisallowedHost

    with pytest.raises(DisallowedHost):
        rf.get("/", HTTP_HOST="acme.localhost").get_host()


def test_tenant_reached_by_a_secondary_domain_knows_its_primary(tenants):
    Domain.objects.create(domain="old-acme.example", tenant=tenants["acme"], is_primary=False)
    tenant = resolution.get_tenant_for_host("old-acme.example")
    assert tenant.primary_domain == "acme.localhost"
