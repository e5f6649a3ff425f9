"""Everything the platform holds, to show that a failed sign-up or provisioning left nothing."""

from django.contrib.auth import get_user_model
from django.db import connection

from accounts.models import Membership
from home.models import PageContent
from tenants.models import Domain, Tenant
from tenants.runtime.context import scopes_disabled
from tests.support.modes import SCHEMA_MODE


def schema_exists(name):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [name])
        return cursor.fetchone() is not None


def schema_names():
    if not SCHEMA_MODE:
        return set()
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname !~ '^(pg_|_)'")
        return {row[0] for row in cursor.fetchall()}


def everything():
    """All platform rows and tenant schemas, to show that a failure leaves nothing behind."""
    with scopes_disabled():
        return {
            "users": sorted(get_user_model().objects.values_list("username", flat=True)),
            "tenants": sorted(Tenant.objects.values_list("slug", flat=True)),
            "domains": sorted(Domain.objects.values_list("domain", flat=True)),
            "memberships": Membership.objects.count(),
            "pages": PageContent.objects.count(),
            "schemas": schema_names(),
        }
