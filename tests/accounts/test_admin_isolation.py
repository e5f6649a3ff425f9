"""A tenant's staff manage their own content in /admin/ and nothing of any other tenant's."""

import pytest
from django.test import Client

from accounts.models import Membership
from home.models import PageContent
from tenants.runtime.context import tenant_context
from tests.support.members import admin_login, make_member
from tests.support.modes import SCHEMA_MODE

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme_owner(tenants):
    return make_member(tenants["acme"], "acme-owner")


@pytest.fixture
def acme_admin(acme_owner):
    client = Client(HTTP_HOST="acme.localhost")
    response = admin_login(client, "acme-owner")
    assert response.status_code == 302 and response.url == "/admin/"
    return client


@pytest.fixture
def global_page(tenants):
    with tenant_context(tenants["global"]):
        return PageContent.objects.first()


def test_member_can_log_in_and_see_own_content(acme_admin):
    response = acme_admin.get("/admin/home/pagecontent/")
    assert response.status_code == 200
    assert b"Acme rockets" in response.content
    assert b"Global Services" not in response.content


def test_member_cannot_log_in_on_another_tenants_host(acme_owner):
    client = Client(HTTP_HOST="global.localhost")
    response = admin_login(client, "acme-owner")
    assert response.status_code == 200  # the form again, with an error
    assert b"Please enter the correct username and password" in response.content
    assert client.get("/admin/").status_code == 302  # still sent to log in


@pytest.mark.parametrize("action", ["change", "delete", "history"])
def test_member_cannot_reach_another_tenants_object_by_id(acme_admin, global_page, action):
    response = acme_admin.get(f"/admin/home/pagecontent/{global_page.pk}/{action}/", follow=True)
    assert global_page.title.encode() not in response.content
    if not SCHEMA_MODE:
        # Ids are shared in row mode: the admin says the object does not exist.
        assert response.redirect_chain and b"doesn\xe2\x80\x99t exist" in response.content
    # (In schema mode every schema numbers its own rows: the id may name one of acme's pages.)


def test_member_cannot_change_or_delete_another_tenants_object_by_post(
    acme_admin, global_page, tenants
):
    acme_admin.post(
        f"/admin/home/pagecontent/{global_page.pk}/change/",
        {"title": "hijacked", "body": "", "ordering": 1, "published": "on"},
    )
    acme_admin.post(f"/admin/home/pagecontent/{global_page.pk}/delete/", {"post": "yes"})
    acme_admin.post(
        "/admin/home/pagecontent/",
        {"action": "delete_selected", "_selected_action": [global_page.pk], "post": "yes"},
    )
    with tenant_context(tenants["global"]):
        page = PageContent.objects.get(pk=global_page.pk)
    assert page.title == global_page.title


def test_content_created_in_admin_belongs_to_current_tenant(acme_admin, tenants):
    response = acme_admin.post(
        "/admin/home/pagecontent/add/",
        {"title": "Made in admin", "body": "hello", "ordering": 9, "published": "on"},
    )
    assert response.status_code == 302
    with tenant_context(tenants["acme"]):
        page = PageContent.objects.get(title="Made in admin")
    assert page.tenant_id == tenants["acme"].pk
    with tenant_context(tenants["global"]):
        assert not PageContent.objects.filter(title="Made in admin").exists()


def test_member_sees_no_platform_tables(acme_admin):
    index = acme_admin.get("/admin/").content
    assert b"/admin/auth/user/" not in index
    assert b"/admin/tenants/" not in index
    assert acme_admin.get("/admin/auth/user/").status_code == 403
    assert acme_admin.get("/admin/tenants/tenant/").status_code == 403


def test_editor_manages_content_but_not_members(tenants):
    make_member(tenants["acme"], "acme-editor", role=Membership.Role.EDITOR)
    client = Client(HTTP_HOST="acme.localhost")
    admin_login(client, "acme-editor")
    assert client.get("/admin/home/pagecontent/").status_code == 200
    assert client.get("/admin/accounts/membership/").status_code == 403


def test_members_list_shows_only_this_tenants_members(acme_admin, tenants):
    make_member(tenants["global"], "global-owner")
    content = acme_admin.get("/admin/accounts/membership/").content
    assert b"acme-owner" in content
    assert b"global-owner" not in content
