"""Shared fixtures and hooks. The suite runs once per mode (scripts/test): TENANCY_MODE=row and
=schema. What tests import (helpers, constants, the server launcher) is in tests/support."""

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from tenants.models import Tenant
from tenants.runtime import resolution
from tenants.runtime.context import tenant_context
from tenants.runtime.hosts import ResolvedHosts
from tests.support.modes import skip_tests_of_the_other_mode


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
