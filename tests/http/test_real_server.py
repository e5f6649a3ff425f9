"""The site over real HTTP, served by a separate server process."""

import pytest

from tenants.models import Domain
from tests.support.demo import DEMO_HOSTS, DEMO_TITLES
from tests.support.servers import on_test_database, serving


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with serving(env=on_test_database()) as server:
        yield server


@pytest.mark.parametrize("slug, host", DEMO_HOSTS.items())
def test_each_demo_host_over_http(server, slug, host):
    response = get(server, "/", host=f"{host}:8000")
    assert response.status == 200
    body = response.text
    assert DEMO_TITLES[slug] in body
    assert all(title not in body for other, title in DEMO_TITLES.items() if other != slug)


def test_bad_hosts_over_http(server):
    assert get(server, "/", host="bad_host!").status == 400
    assert get(server, "/", host="nobody.example").status == 200  # default tenant fallback


def test_cross_process_invalidation_through_the_database(
    django_db_setup, django_db_blocker, tenants_committed
):
    """A domain moved in this process is seen by a server process, with no shared cache."""
    env = {"CACHE_URL": "locmemcache://", "TENANCY_RESOLVER_REVALIDATE_SECONDS": "0"}
    with serving(env=on_test_database(**env)) as server, django_db_blocker.unblock():
        domain = Domain.objects.create(
            domain="moving.example", tenant=tenants_committed["acme"], is_primary=False
        )
        try:
            assert "Acme rockets" in get(server, "/", host="moving.example").text  # warm
            domain.tenant = tenants_committed["global"]
            domain.save()
            assert "Global Services worldwide" in get(server, "/", host="moving.example").text
        finally:
            domain.delete()


def get(server, path, host):
    """GET with exactly ``host`` as the Host header (no port added)."""
    return server.get(host, path, headers={"Host": host})


@pytest.fixture
def tenants_committed(django_db_blocker):
    from tenants.models import Tenant

    with django_db_blocker.unblock():
        return {t.slug: t for t in Tenant.objects.all()}
