"""The base manager of tenant-owned models is scoped and fails closed, like the default one.

Django reaches rows through ``Model._base_manager`` where it must not lose any: the admin's
view-on-site, related-object access, ``refresh_from_db()`` and the delete collector. Each is
tried here on a row of another tenant that sits where the current tenant's queries look (row
mode: another tenant's row in the shared table; schema mode: a stray row of another tenant in
this tenant's schema, which the row filter, the second wall, must keep out).
"""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.test.utils import isolate_apps
from django_scopes import ScopeError

from home.models import PageContent
from tenants.models import Tenant, TenantOwnedModel
from tenants.runtime.context import no_tenant, scopes_disabled, tenant_context
from tests.support.members import make_member, signed_in
from tests.support.modes import ROW_LEVEL_SECURITY, SCHEMA_MODE

pytestmark = pytest.mark.django_db


def put_where(tenant, place, objs):
    """Insert ``objs`` (rows of ``tenant``) where ``place``'s queries look: the shared table in
    row mode, ``place``'s schema in schema mode. A plain queryset: the tenant-owned one refuses
    to write another tenant's rows, which is what this sets up."""
    model = type(objs[0])
    for obj in objs:
        obj.tenant = tenant
    with tenant_context(place if SCHEMA_MODE else tenant):
        return models.QuerySet(model).bulk_create(objs)


@pytest.fixture
def foreign_page(tenants):
    """A draft of global's, where acme's queries look."""
    return put_where(tenants["global"], tenants["acme"], [PageContent(title="Global draft")])[0]


@pytest.fixture
def acme_admin(tenants):
    make_member(tenants["acme"], "acme-owner")
    return signed_in("acme.localhost", "acme-owner")


def test_view_on_site_does_not_reach_another_tenants_row(acme_admin, tenants, foreign_page):
    with tenant_context(tenants["acme"]):
        ct = ContentType.objects.filter(app_label="home", model="pagecontent").get().pk
        own = PageContent.objects.first()
    response = acme_admin.get(f"/admin/r/{ct}/{foreign_page.pk}/")
    assert response.status_code == 404
    assert acme_admin.get(f"/admin/r/{ct}/{own.pk}/").url.endswith(f"/pages/{own.pk}/")


def test_refresh_from_db_does_not_read_another_tenants_row(tenants, foreign_page):
    with tenant_context(tenants["acme"]):
        with pytest.raises(PageContent.DoesNotExist):
            foreign_page.refresh_from_db()
        with scopes_disabled():  # the explicit escape hatch still reads it, unless the
            if ROW_LEVEL_SECURITY:  # database itself keeps to the tenant (row-level security)
                with pytest.raises(PageContent.DoesNotExist):
                    foreign_page.refresh_from_db()
            else:
                foreign_page.refresh_from_db()
    with no_tenant(), pytest.raises(ScopeError):
        foreign_page.refresh_from_db()


# The site's database role may not create tables under row-level security; these two run in
# the other passes (the manager is the same), the database's side is test_row_level_security.py.
needs_create_table = pytest.mark.skipif(
    ROW_LEVEL_SECURITY, reason="makes tables as the site's role (not with row-level security)"
)


@pytest.fixture
def related_models(tenants):
    """Folder and Note (a foreign key between tenant-owned models), in a registry of their own
    so that nothing else in the suite sees them; their tables live in the test's transaction,
    where acme's queries look."""
    with isolate_apps("tests") as registry:
        registry.register_model("tenants", Tenant)

        class Folder(TenantOwnedModel):
            name = models.CharField(max_length=50)

            class Meta:
                app_label = "tests"

        class Note(TenantOwnedModel):
            folder = models.ForeignKey(
                Folder, models.CASCADE, related_name="notes", db_constraint=False
            )
            text = models.CharField(max_length=50)

            class Meta:
                app_label = "tests"

        with tenant_context(tenants["acme"]), connection.cursor() as cursor:
            editor = connection.schema_editor()
            for model in (Folder, Note):
                cursor.execute(*editor.table_sql(model))
        yield Folder, Note


@needs_create_table
def test_related_object_access_does_not_cross_tenants(tenants, related_models):
    Folder, Note = related_models
    acme, other = tenants["acme"], tenants["global"]
    theirs = put_where(other, acme, [Folder(name="theirs")])[0]
    with tenant_context(acme):
        mine = Folder.objects.create(name="mine")
        to_mine = Note.objects.create(folder=mine, text="fine")
        to_theirs = Note.objects.create(folder_id=theirs.pk, text="points across")
    with tenant_context(acme):
        assert Note.objects.get(pk=to_mine.pk).folder.name == "mine"
        with pytest.raises(Folder.DoesNotExist):
            Note.objects.get(pk=to_theirs.pk).folder  # noqa: B018
        assert list(mine.notes.all()) == [to_mine]
    with no_tenant(), pytest.raises(ScopeError):
        Note(folder_id=theirs.pk, tenant=acme).folder  # noqa: B018


@needs_create_table
def test_cascade_delete_does_not_reach_another_tenants_rows(tenants, related_models):
    Folder, Note = related_models
    acme, other = tenants["acme"], tenants["global"]
    with tenant_context(acme):
        folder = Folder.objects.create(name="mine")
        own = Note.objects.create(folder=folder, text="mine")
    stray = put_where(other, acme, [Note(folder_id=folder.pk, text="theirs")])[0]
    folder_pk = folder.pk
    with tenant_context(acme):
        folder.delete()
        assert not Note.objects.filter(pk=own.pk).exists()
        with scopes_disabled():
            assert Note.objects.filter(pk=stray.pk).exists()
    with no_tenant(), pytest.raises(ScopeError):  # no tenant: the collector fails closed
        Folder(pk=folder_pk, tenant=acme).delete()


def test_every_tenant_owned_model_has_the_scoped_base_manager():
    from django.apps import apps

    from tenants.runtime.scoping import TenantManager

    owned = [m for m in apps.get_models() if issubclass(m, TenantOwnedModel)]
    assert owned
    for model in owned:
        assert isinstance(model._base_manager, TenantManager), model
