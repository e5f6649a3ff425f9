"""Sessions and cache entries never carry one tenant's state into another."""

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client

from tenants.runtime.context import tenant_context
from tenants.runtime.sessions import TENANT_SESSION_KEY
from tests.support.members import admin_login, make_member

pytestmark = pytest.mark.django_db


def test_session_cookie_from_one_tenant_is_not_a_login_on_another(tenants):
    make_member(tenants["acme"], "acme-owner")
    acme = Client(HTTP_HOST="acme.localhost")
    admin_login(acme, "acme-owner")
    assert acme.get("/admin/").status_code == 200
    stolen = acme.cookies[settings.SESSION_COOKIE_NAME].value

    other = Client(HTTP_HOST="global.localhost")
    other.cookies[settings.SESSION_COOKIE_NAME] = stolen
    response = other.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response.url
    # The foreign session is not adopted: a new cookie (if any) has a different key.
    new_cookie = response.cookies.get(settings.SESSION_COOKIE_NAME)
    assert new_cookie is None or new_cookie.value != stolen
    # ...and the original session still works on its own tenant.
    assert acme.get("/admin/").status_code == 200


def test_session_is_stamped_with_its_tenant(tenants):
    make_member(tenants["acme"], "acme-owner")
    client = Client(HTTP_HOST="acme.localhost")
    admin_login(client, "acme-owner")
    with tenant_context(tenants["acme"]):
        session = client.session
        assert session[TENANT_SESSION_KEY] == tenants["acme"].pk


def test_same_cache_key_is_separate_per_tenant(tenants):
    with tenant_context(tenants["acme"]):
        cache.set("greeting", "hello from acme")
    with tenant_context(tenants["global"]):
        assert cache.get("greeting") is None
        cache.set("greeting", "hello from global")
    with tenant_context(tenants["acme"]):
        assert cache.get("greeting") == "hello from acme"
    assert cache.get("greeting") is None  # no tenant: the platform's own key space


def test_cache_key_names_the_deployment_then_the_tenant(tenants, settings):
    with tenant_context(tenants["acme"]):
        key = cache.make_key("k")
    assert key.startswith(f"{settings.CACHE_KEY_PREFIX}:t{tenants['acme'].pk}:")


def test_foreign_session_key_loads_as_an_empty_new_session(tenants):
    from tenants.runtime.sessions import SessionStore

    with tenant_context(tenants["acme"]):
        session = SessionStore()
        session["cart"] = "acme things"
        session.save()
        key = session.session_key
    with tenant_context(tenants["global"]):
        foreign = SessionStore(session_key=key)
        assert foreign.get("cart") is None
        assert foreign.session_key is None  # will be saved under a new key, not the stolen one
    with tenant_context(tenants["acme"]):
        assert SessionStore(session_key=key)["cart"] == "acme things"
