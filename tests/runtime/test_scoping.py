"""Tenant-owned data: each tenant sees only its own rows; with no tenant, queries fail closed."""

import pytest
from django_scopes import ScopeError

from home.models import PageContent
from tenants.rls import owner_alias
from tenants.runtime.context import no_tenant, scopes_disabled, tenant_context
from tenants.runtime.scoping import CrossTenantWrite, TenantRequired
from tests.support.demo import DEMO_HOSTS, DEMO_TITLES
from tests.support.modes import DATABASES_WITH_OWNER, SCHEMA_MODE

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("slug, host", DEMO_HOSTS.items())
def test_each_host_shows_only_its_own_content(host_client, slug, host):
    html = host_client(host).get("/").content.decode()
    assert DEMO_TITLES[slug] in html
    for other, title in DEMO_TITLES.items():
        if other != slug:
            assert title not in html


def test_query_with_no_tenant_fails_closed():
    with no_tenant():
        for attempt in (
            lambda: list(PageContent.objects.all()),
            lambda: PageContent.objects.count(),
            lambda: PageContent.objects.filter(title="x").first(),
            lambda: PageContent.objects.exists(),
            lambda: PageContent.objects.get(pk=1),
            lambda: PageContent.objects.in_bulk([1]),
            lambda: PageContent.objects.update(title="pwned"),
            lambda: PageContent.objects.all().delete(),
            lambda: PageContent.objects.values_list("title"),
        ):
            with pytest.raises(ScopeError):
                attempt()


def test_no_tenant_inside_a_tenant_context_fails_closed_and_restores_it(tenants):
    with tenant_context(tenants["acme"]):
        with no_tenant(), pytest.raises(ScopeError):
            list(PageContent.objects.all())
        assert {p.tenant.slug for p in PageContent.objects.all()} == {"acme"}
    with pytest.raises(ScopeError):  # and nothing is left active after the block
        list(PageContent.objects.all())


def test_create_with_no_tenant_fails_closed():
    with no_tenant(), pytest.raises(TenantRequired):
        PageContent.objects.create(title="orphan")


def test_create_sets_the_current_tenant(tenants):
    with tenant_context(tenants["acme"]):
        page = PageContent.objects.create(title="New")
        bulk = PageContent.objects.bulk_create([PageContent(title="Bulk")])
    assert page.tenant_id == tenants["acme"].pk
    assert bulk[0].tenant_id == tenants["acme"].pk


def test_scoped_queries_see_only_the_current_tenant(tenants):
    with tenant_context(tenants["acme"]):
        acme_titles = set(PageContent.objects.values_list("title", flat=True))
        assert PageContent.objects.update(body="changed") == len(acme_titles)
    with tenant_context(tenants["global"]):
        assert "Acme rockets" not in set(PageContent.objects.values_list("title", flat=True))
        assert not PageContent.objects.filter(body="changed").exists()


def test_a_new_tenant_id_forgets_the_cached_tenant(tenants):
    with tenant_context(tenants["acme"]):
        page = PageContent.objects.first()
        assert page.tenant == tenants["acme"]  # cached on the object from here
        page.tenant_id = tenants["acme"].pk  # the same id keeps it
        assert page._state.fields_cache["tenant"] == tenants["acme"]
        page.tenant_id = tenants["global"].pk  # another id drops it
        assert "tenant" not in page._state.fields_cache


def test_saving_another_tenants_object_is_refused(tenants):
    with tenant_context(tenants["acme"]):
        page = PageContent.objects.first()
    with tenant_context(tenants["global"]), pytest.raises(CrossTenantWrite):
        page.title = "hijacked"
        page.save()


def test_another_tenants_id_in_a_url_is_404(host_client, tenants):
    with tenant_context(tenants["acme"]):
        acme_page = PageContent.objects.first()
    assert host_client("acme.localhost").get(f"/pages/{acme_page.pk}/").status_code == 200
    response = host_client("global.localhost").get(f"/pages/{acme_page.pk}/")
    assert acme_page.title.encode() not in response.content
    if not SCHEMA_MODE:  # in schema mode the id may name one of global's own pages
        assert response.status_code == 404


def test_unpublished_pages_are_hidden(host_client, tenants):
    with tenant_context(tenants["acme"]):
        page = PageContent.objects.create(title="Draft plan", published=False)
    client = host_client("acme.localhost")
    assert b"Draft plan" not in client.get("/").content
    assert client.get(f"/pages/{page.pk}/").status_code == 404


@pytest.mark.django_db(databases=DATABASES_WITH_OWNER)
def test_escape_hatch_sees_every_tenant():
    # With row-level security, only the owner's connection sees past the current tenant.
    with scopes_disabled():
        pages = PageContent.objects.using(owner_alias())
        tenant_ids = set(pages.values_list("tenant_id", flat=True))
    # In schema mode each schema only holds its own rows, even unscoped; public holds default's.
    assert len(tenant_ids) >= (1 if SCHEMA_MODE else len(DEMO_TITLES))


def test_tenant_attribute_needs_no_query(tenants, django_assert_num_queries):
    with tenant_context(tenants["acme"]):
        page = PageContent.objects.first()
        with django_assert_num_queries(0):
            assert page.tenant == tenants["acme"]
