"""Shared fixtures and hooks. The suite runs once per mode (scripts/test): TENANCY_MODE=row and
=schema. What tests import (helpers, constants, the server launcher) is in tests/support."""

import pytest
import pytest_django.fixtures
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from tenants.models import Tenant
from tenants.runtime import resolution
from tenants.runtime.context import tenant_context
from tenants.runtime.hosts import ResolvedHosts
from tests.support.modes import skip_tests_of_the_other_mode


def _databases_for_test(test):
    """pytest-django sets the test database up only if some test uses ``db``: tests that use
    ``django_db_setup`` alone (committed_db, real server processes) need it too, also when they
    run on their own."""
    if "django_db_setup" in getattr(test, "fixturenames", ()):
        return ("default",), False
    return _pytest_django_databases_for_test(test)


_pytest_django_databases_for_test = pytest_django.fixtures._get_databases_for_test
pytest_django.fixtures._get_databases_for_test = _databases_for_test


def pytest_collection_modifyitems(config, items):
    """Mode-specific tests are deselected in the other mode, and reported as such."""
    skip_tests_of_the_other_mode(items)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database, migrated, with the five demo tenants (committed, shared by all)."""
    # Schema mode: tests fill the spare-schema pool themselves; no refill threads in pytest.
    settings.TENANCY_SCHEMA_POOL_REFILL = "command"
    with django_db_blocker.unblock():
        call_command("seed_demo_tenants", verbosity=0)


@pytest.fixture(scope="session", autouse=True)
def _media_in_a_temporary_directory(tmp_path_factory):
    """Uploads made by the tests (and by their server and worker processes, which are given
    MEDIA_ROOT) go to a temporary directory, never into the repository."""
    from django.test import override_settings

    override = override_settings(MEDIA_ROOT=str(tmp_path_factory.mktemp("media")))
    override.enable()
    yield
    override.disable()


@pytest.fixture(autouse=True)
def _resolver_validates_hosts(settings):
    """Django's test setup swaps ALLOWED_HOSTS for a plain list; put the real validator back."""
    settings.ALLOWED_HOSTS = ResolvedHosts()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_tenant_lookups():
    """Tests roll back tenants and domains they create; cached lookups must not outlive them."""
    resolution.invalidate()
    yield
    resolution.invalidate()


@pytest.fixture
def tenants(db):
    """The demo tenants by slug."""
    return {t.slug: t for t in Tenant.objects.all()}


@pytest.fixture
def host_client():
    """client_for("acme.localhost") -> a test Client that sends that Host."""

    def client_for(host):
        return Client(HTTP_HOST=host)

    return client_for


@pytest.fixture
def in_tenant():
    return tenant_context


@pytest.fixture
def committed_db(django_db_setup, django_db_blocker):
    """Database access whose writes are committed at once, for tests whose worker or server
    process must see them (pytest-django's ``db`` keeps each test in a transaction). Tests clean
    up what they commit: the test database is shared by the whole run."""
    from django.db import connections

    with django_db_blocker.unblock():
        yield
        connections.close_all()
