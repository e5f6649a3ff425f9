"""Members of a tenant, and logging in as a person would."""

from django.contrib.auth import get_user_model

from accounts.models import Membership
from tenants.models import Tenant
from tenants.runtime.context import scopes_disabled, tenant_context

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
