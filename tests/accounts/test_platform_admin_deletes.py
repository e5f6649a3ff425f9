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
from tests.support.modes import ROW_LEVEL_SECURITY

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
    # The confirmation lists both sites' memberships; with row-level security the platform
    # site's role sees none of them (PostgreSQL's own cascade deletes them all the same).
    assert page.count("Membership:") == (0 if ROW_LEVEL_SECURITY else 2)
    response = platform_admin.post(f"/admin/auth/user/{user.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    for slug in ("acme", "global"):
        assert not rows_of(tenants[slug], Membership, user_id=user.pk)
    assert not get_user_model().objects.filter(username="two-sites").exists()


def rows_of(tenant, model, **lookups) -> bool:
    """Whether ``tenant`` has such rows, seen from its own context (where row-level security
    shows them)."""
    with tenant_context(tenant), scopes_disabled():
        return model.objects.filter(**lookups).exists()


def test_deleting_a_tenant_in_the_platform_admin_deletes_its_rows(platform_admin, tenants):
    with no_tenant():
        doomed = create_tenant(
            name="Doomed", slug="doomed", domain="doomed.localhost", pages=[{"title": "Bye"}]
        ).tenant
    response = platform_admin.post(f"/admin/tenants/tenant/{doomed.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Tenant.objects.filter(pk=doomed.pk).exists()
    assert not rows_of(doomed, PageContent, tenant_id=doomed.pk)
    assert rows_of(tenants["acme"], PageContent, tenant_id=tenants["acme"].pk)


def test_deleting_selected_tenants_in_the_platform_admin_deletes_their_rows(
    platform_admin, tenants
):
    with no_tenant():
        doomed = [
            create_tenant(
                name=f"Doomed {n}",
                slug=f"doomed{n}",
                domain=f"doomed{n}.localhost",
                pages=[{"title": "Bye"}],
            ).tenant
            for n in (1, 2)
        ]
    response = platform_admin.post(
        "/admin/tenants/tenant/",
        {"action": "delete_selected", "_selected_action": [t.pk for t in doomed], "post": "yes"},
    )
    assert response.status_code == 302
    for tenant in doomed:
        assert not Tenant.objects.filter(pk=tenant.pk).exists()
        assert not rows_of(tenant, PageContent, tenant_id=tenant.pk)
    assert rows_of(tenants["acme"], PageContent, tenant_id=tenants["acme"].pk)


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
    assert not rows_of(tenants["acme"], Membership, user_id=user_pk)


@pytest.mark.parametrize("active", [None, "acme"])
def test_deleting_a_tenant_in_code_deletes_its_rows_whatever_tenant_is_active(tenants, active):
    with no_tenant():
        doomed = create_tenant(
            name="Doomed", slug="doomed", domain="doomed.localhost", pages=[{"title": "Bye"}]
        ).tenant
    with tenant_context(tenants[active]) if active else no_tenant():
        doomed_pk = doomed.pk
        doomed.delete()
    gone = Tenant(pk=doomed_pk, slug="doomed")  # its rows are looked for in its context
    assert not rows_of(gone, PageContent, tenant_id=doomed_pk)
    assert rows_of(tenants["acme"], PageContent, tenant_id=tenants["acme"].pk)
