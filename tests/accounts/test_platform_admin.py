"""The platform site's admin: platform staff manage tenants and domains; bad input is refused."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tenants.models import Domain, Tenant
from tenants.runtime.context import no_tenant, scopes_disabled
from tests.support.members import PASSWORD, admin_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(tenants):
    with no_tenant():
        return get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.fixture
def platform_admin(superuser):
    client = Client(HTTP_HOST="localhost")
    assert admin_login(client, "root").status_code == 302
    return client


def test_superuser_manages_tenants_and_domains_on_the_platform_site(platform_admin):
    tenants_page = platform_admin.get("/admin/tenants/tenant/").content.decode()
    for name in ["Acme Corporation", "JCW Trading Hub", "Global Services"]:
        assert name in tenants_page
    assert "jcwtradehub.com" in platform_admin.get("/admin/tenants/domain/").content.decode()


def test_superuser_is_not_a_member_of_tenant_sites(superuser):
    client = Client(HTTP_HOST="acme.localhost")
    response = admin_login(client, "root")
    assert response.status_code == 200  # refused: platform staff are not acme's members
    assert client.get("/admin/").status_code == 302


def test_adding_a_domain_another_tenant_has_is_a_form_error(platform_admin, tenants):
    response = platform_admin.post(
        "/admin/tenants/domain/add/",
        {"domain": "ACME.localhost.", "tenant": tenants["global"].pk, "is_primary": ""},
    )
    assert response.status_code == 200
    assert "Domain with this Domain already exists" in response.content.decode()
    with scopes_disabled():
        assert Domain.objects.get(domain="acme.localhost").tenant_id == tenants["acme"].pk


@pytest.mark.parametrize("bad", ["not a host", "x" * 300, "evil.com/path", "-bad-.com"])
def test_invalid_domain_is_a_form_error(platform_admin, tenants, bad):
    before = Domain.objects.count()
    response = platform_admin.post(
        "/admin/tenants/domain/add/", {"domain": bad, "tenant": tenants["global"].pk}
    )
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert Domain.objects.count() == before


def test_domain_is_normalised_when_added_in_the_admin(platform_admin, tenants):
    response = platform_admin.post(
        "/admin/tenants/domain/add/",
        {"domain": "Shop.Global.Example.", "tenant": tenants["global"].pk, "is_primary": ""},
    )
    assert response.status_code == 302
    assert Domain.objects.get(domain="shop.global.example").tenant_id == tenants["global"].pk
    # ...and the new host is served at once.
    page = Client(HTTP_HOST="shop.global.example").get("/")
    assert b"Global Services worldwide" in page.content


@pytest.mark.parametrize(
    "slug, message",
    [
        ("Bad Slug", "starts with a letter"),
        ("pg-secret", "cannot start with"),
        ("a" * 70, "at most 63"),
        ("acme", "is reserved"),
    ],
)
def test_invalid_tenant_slug_is_a_form_error(platform_admin, slug, message):
    before = Tenant.objects.count()
    response = platform_admin.post(
        "/admin/tenants/tenant/add/",
        {
            "name": "X",
            "slug": slug,
            "is_active": "on",
            "domains-TOTAL_FORMS": "0",
            "domains-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Tenant.objects.count() == before
