"""Deleting in the platform admin is platform work: it follows a user's memberships and (row
mode) a tenant's rows into every tenant, although the tenant-owned base manager is scoped."""

import pytest
from django.contrib.auth import get_user_model

from accounts.models import Membership
from home.models import PageContent
from tenants.models import Tenant
from tenants.provisioning.services import create_tenant
from tenants.runtime.context import no_tenant, scopes_disabled, tenant_context
from tests.support.members import platform_superuser

pytestmark = [pytest.mark.django_db, pytest.mark.row_only]  # schema mode: members are per schema


@pytest.fixture
def platform_admin(tenants):
    return platform_superuser()


def platform_user(username):
    """A platform account without a site of its own (it would own, and protect, a tenant)."""
    user = get_user_model()(username=username)
    user.provision_site = False
    with no_tenant():
        user.save()
    return user


def test_deleting_a_user_who_is_a_member_of_two_sites(platform_admin, tenants):
    user = platform_user("two-sites")
    for slug in ("acme", "global"):
        with tenant_context(tenants[slug]):
            Membership.objects.create(user=user)
    page = platform_admin.get(f"/admin/auth/user/{user.pk}/delete/").content.decode()
    assert page.count("Membership:") == 2  # the confirmation lists both sites' memberships
    response = platform_admin.post(f"/admin/auth/user/{user.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    with scopes_disabled():
        assert not Membership.objects.filter(user_id=user.pk).exists()
    assert not get_user_model().objects.filter(username="two-sites").exists()


def test_deleting_a_tenant_in_the_platform_admin_deletes_its_rows(platform_admin, tenants):
    with no_tenant():
        doomed = create_tenant(
            name="Doomed", slug="doomed", domain="doomed.localhost", pages=[{"title": "Bye"}]
        ).tenant
    response = platform_admin.post(f"/admin/tenants/tenant/{doomed.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Tenant.objects.filter(pk=doomed.pk).exists()
    with scopes_disabled():
        assert not PageContent.objects.filter(tenant_id=doomed.pk).exists()
        assert PageContent.objects.filter(tenant_id=tenants["acme"].pk).exists()


def test_a_user_deleted_without_a_tenant_or_escape_hatch_fails_closed(tenants):
    from django_scopes import ScopeError

    user = platform_user("shell-user")
    with tenant_context(tenants["acme"]):
        Membership.objects.create(user=user)
    with no_tenant():
        with pytest.raises(ScopeError):
            user.delete()
        user_pk = user.pk
        with scopes_disabled():
            user.delete()
            assert not Membership.objects.filter(user_id=user_pk).exists()


@pytest.mark.parametrize("active", [None, "acme"])
def test_deleting_a_tenant_in_code_deletes_its_rows_whatever_tenant_is_active(tenants, active):
    with no_tenant():
        doomed = create_tenant(
            name="Doomed", slug="doomed", domain="doomed.localhost", pages=[{"title": "Bye"}]
        ).tenant
    with tenant_context(tenants[active]) if active else no_tenant():
        doomed.delete()
    with scopes_disabled():
        assert not PageContent.objects.filter(tenant_id=doomed.pk).exists()
        assert PageContent.objects.filter(tenant_id=tenants["acme"].pk).exists()
