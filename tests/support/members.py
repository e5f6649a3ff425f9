"""Members of a tenant, and logging in as a person would."""

from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import Membership
from tenants.models import Tenant
from tenants.runtime.context import no_tenant, scopes_disabled, tenant_context

PASSWORD = "correct horse battery staple"


def make_member(tenant, username, role=Membership.Role.OWNER):
    """A user who is a member of ``tenant`` (in schema mode, in that tenant's own schema)."""
    with tenant_context(tenant):
        user = get_user_model().objects.create_user(username, f"{username}@example.com", PASSWORD)
        Membership.objects.create(user=user, role=role)
    return user


def remove_sign_up(username):
    """Remove what a committed sign-up made: its tenant (schema, domains, data) and its owner."""
    with scopes_disabled():
        for tenant in Tenant.objects.filter(owner__username=username):
            tenant.delete(force_drop=True)  # and its schema, in schema mode
        get_user_model().objects.filter(username=username).delete()


def admin_login(client, username, password=PASSWORD):
    """Log in through the admin's login form, as a person would; returns the response."""
    client.get("/admin/login/")
    return client.post(
        "/admin/login/",
        {"username": username, "password": password, "next": "/admin/"},
    )


def signed_in(host, username, password=PASSWORD, **client_options):
    """A test Client for ``host``, signed in through its admin's log-in form as ``username``."""
    client = Client(HTTP_HOST=host, **client_options)
    response = admin_login(client, username, password)
    assert response.status_code == 302, f"{username} could not sign in on {host}"
    return client


def platform_superuser(username="root", **client_options):
    """A new superuser of the platform, signed in to the platform site's admin."""
    with no_tenant():
        get_user_model().objects.create_superuser(username, f"{username}@example.com", PASSWORD)
    return signed_in("localhost", username, **client_options)
