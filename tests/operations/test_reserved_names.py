"""Reserved names are refused on every path that names a tenant (issue 12, item 4)."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.forms import SignUpForm
from tenants.models import Tenant
from tenants.provisioning.services import SiteNameUnavailable, create_tenant
from tenants.runtime.context import no_tenant
from tests.support.members import PASSWORD, admin_login

pytestmark = pytest.mark.django_db
RESERVED = ["www", "template", "admin", "static", "mail"]


@pytest.fixture
def counts():
    """The number of tenants, before and after: a refusal leaves nothing behind."""
    before = Tenant.objects.count()
    yield
    assert Tenant.objects.count() == before


def _command(*args):
    with pytest.raises(CommandError) as refused:
        call_command(*args)
    return str(refused.value)


@pytest.mark.parametrize("slug", RESERVED)
def test_tenants_create(slug, counts):
    assert "reserved" in _command("tenants", "create", "--name", "X", "--slug", slug)


@pytest.mark.parametrize("slug", RESERVED)
def test_tenants_rename(slug, tenants, counts):
    assert "reserved" in _command("tenants", "rename", "acme", slug)
    assert Tenant.objects.get(pk=tenants["acme"].pk).slug == "acme"


@pytest.mark.parametrize("slug", RESERVED)
def test_provision_tenant(slug, counts):
    with no_tenant():
        user = get_user_model()(username="reserved-user")
        user.provision_site = False
        user.save()
    assert "reserved" in _command("provision_tenant", "--user", "reserved-user", "--slug", slug)


@pytest.mark.parametrize("slug", RESERVED)
def test_sign_up(slug, counts):
    form = SignUpForm({"username": slug, "email": "x@example.com", "password": PASSWORD})
    assert not form.is_valid()
    assert "reserved" in " ".join(form.errors["username"])


@pytest.mark.parametrize("slug", RESERVED)
def test_the_platform_admins_add_tenant(slug, tenants, counts):
    with no_tenant():
        get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client = Client(HTTP_HOST="localhost")
    assert admin_login(client, "root").status_code == 302
    response = client.post("/admin/tenants/tenant/add/", {"name": "X", "slug": slug})
    assert response.status_code == 200
    assert "reserved" in response.content.decode()


@pytest.mark.parametrize("slug", RESERVED)
def test_the_service_itself(slug, counts):
    with pytest.raises(SiteNameUnavailable, match="reserved"):
        create_tenant(name="X", slug=slug, domain=f"{slug}.example")


def test_the_platform_site_may_take_its_own_reserved_slug(settings, counts):
    """A fresh deployment creates its platform site with `tenants create --slug default`."""
    settings.TENANCY_DEFAULT_TENANT = "www"
    with pytest.raises(SiteNameUnavailable, match="already serves"):  # not "reserved"
        create_tenant(name="X", slug="www", domain="acme.localhost")
