"""Every page of the platform's own admin (tenants, domains, users, groups), opened on a tenant's
host by that tenant's signed-in owner, is a 403 or a 404: never a 500 (schema mode: the
platform tables are not on the tenant's search_path), never a page or a redirect that tells
which ids exist."""

import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType

from accounts.admin import PlatformOnlyAdmin
from tenants.models import Domain
from tenants.runtime.context import no_tenant, tenant_context
from tests.support.members import make_member, platform_superuser, signed_in

pytestmark = pytest.mark.django_db

PLATFORM_ADMINS = {
    model: model_admin
    for model, model_admin in admin.site._registry.items()
    if isinstance(model_admin, PlatformOnlyAdmin)
}


@pytest.fixture
def platform_objects(tenants):
    """An existing platform object of each model, by model (ids as the platform site has them)."""
    from django.contrib.auth import get_user_model

    user = get_user_model()(username="platform-user")
    user.provision_site = False  # no site of its own
    with no_tenant():
        user.save()
        group = Group.objects.create(name="Platform staff")
        domain = Domain.objects.get(domain="global.localhost")
    objects = {
        "tenant": tenants["global"],
        "domain": domain,
        "user": user,
        "group": group,
    }
    assert {m._meta.model_name for m in PLATFORM_ADMINS} == set(objects)
    return objects


def platform_admin_paths(objects):
    """Every URL of every platform admin, with an existing object's id where one is asked for."""
    for model, model_admin in PLATFORM_ADMINS.items():
        obj = objects[model._meta.model_name]
        prefix = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for url in model_admin.get_urls():
            yield prefix + re.sub(r"<[^>]+>", str(obj.pk), str(url.pattern))


@pytest.fixture
def acme_owner_client(tenants):
    make_member(tenants["acme"], "acme-owner")
    return signed_in("acme.localhost", "acme-owner", raise_request_exception=False)


def test_every_platform_admin_page_on_a_tenant_host_is_refused(acme_owner_client, platform_objects):
    paths = list(platform_admin_paths(platform_objects))
    assert len(paths) >= 4 * 5  # changelist, add, history, delete, change (+ redirect) each
    answers = {}
    for path in paths:
        answers[f"GET {path}"] = acme_owner_client.get(path).status_code
        answers[f"POST {path}"] = acme_owner_client.post(path, {"post": "yes"}).status_code
    assert {request: status for request, status in answers.items() if status != 403} == {}


def test_view_on_site_of_platform_objects_on_a_tenant_host_is_404(
    acme_owner_client, tenants, platform_objects
):
    answers = {}
    for model in PLATFORM_ADMINS:
        opts = model._meta
        with tenant_context(tenants["acme"]):  # the content type ids of acme's own tables
            ct = ContentType.objects.get(app_label=opts.app_label, model=opts.model_name).pk
        path = f"/admin/r/{ct}/{platform_objects[opts.model_name].pk}/"
        answers[path] = acme_owner_client.get(path).status_code
    assert set(answers.values()) == {404}, answers


def test_the_platform_site_still_serves_them(platform_objects, tenants):
    client = platform_superuser(raise_request_exception=False)
    for path in platform_admin_paths(platform_objects):
        assert client.get(path).status_code in (200, 302), path
