"""The site over real HTTP, served by a separate server process."""

import pytest

from tenants.models import Domain
from tests.support.demo import DEMO_HOSTS, DEMO_TITLES
from tests.support.servers import fetch, run_server


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with run_server() as base:
        yield base


@pytest.mark.parametrize("slug, host", DEMO_HOSTS.items())
def test_each_demo_host_over_http(server, slug, host):
    status, body = fetch(server, "/", host=f"{host}:8000")
    assert status == 200
    assert DEMO_TITLES[slug] in body
    assert all(title not in body for other, title in DEMO_TITLES.items() if other != slug)


def test_bad_hosts_over_http(server):
    assert fetch(server, "/", host="bad_host!")[0] == 400
    assert fetch(server, "/", host="nobody.example")[0] == 200  # default tenant fallback


def test_cross_process_invalidation_through_redis(
    django_db_setup, django_db_blocker, tenants_committed
):
    """A domain moved in this process is seen by a server process sharing Redis."""
    env = {"CACHE_URL": "redis://127.0.0.1:6379/15", "TENANCY_RESOLVER_REVALIDATE_SECONDS": "0"}
    with run_server(extra_env=env) as base, django_db_blocker.unblock():
        domain = Domain.objects.create(
            domain="moving.example", tenant=tenants_committed["acme"], is_primary=False
        )
        try:
            assert "Acme rockets" in fetch(base, "/", host="moving.example")[1]  # warm
            domain.tenant = tenants_committed["global"]
            with _shared_redis_cache():
                domain.save()
            assert "Global Services worldwide" in fetch(base, "/", host="moving.example")[1]
        finally:
            domain.delete()


@pytest.fixture
def tenants_committed(django_db_blocker):
    from tenants.models import Tenant

    with django_db_blocker.unblock():
        return {t.slug: t for t in Tenant.objects.all()}


def _shared_redis_cache():
    from django.test import override_settings

    return override_settings(
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "tenancy": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": "redis://127.0.0.1:6379/15",
                "KEY_PREFIX": "tenancy",
            },
        }
    )
