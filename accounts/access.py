"""Who may do what on the current tenant's site: the one place that answers it."""

from accounts.models import Membership
from tenants.conf import is_platform_tenant
from tenants.runtime.context import current_tenant

# Apps whose models a role may manage on its own tenant's site.
ROLE_APPS = {
    Membership.Role.OWNER: {"home", "accounts"},
    Membership.Role.EDITOR: {"home"},
}
_CACHE_ATTR = "_tenant_membership_cache"


def current_membership(user):
    """The user's membership of the current tenant, or None (cached on the user object)."""
    tenant = current_tenant()
    if tenant is None or not getattr(user, "is_authenticated", False):
        return None
    cache = getattr(user, _CACHE_ATTR, None)
    if cache is None or cache[0] != tenant.pk:
        membership = Membership.objects.filter(user=user).first()
        cache = (tenant.pk, membership)
        setattr(user, _CACHE_ATTR, cache)
    return cache[1]


def is_platform_site() -> bool:
    """Whether the current tenant is the platform's own (default) site."""
    return is_platform_tenant(current_tenant())


def may_sign_in(user) -> bool:
    """Platform accounts sign in on the platform site; elsewhere only the tenant's members."""
    if not user.is_active:
        return False
    if is_platform_site():
        return True
    return current_membership(user) is not None


def may_use_admin(user) -> bool:
    if not user.is_active:
        return False
    if is_platform_site() and user.is_staff:
        return True
    return current_membership(user) is not None


def role_permissions(user, perm: str) -> bool:
    membership = current_membership(user)
    if membership is None:
        return False
    app_label = perm.split(".", 1)[0]
    return app_label in ROLE_APPS.get(membership.role, set())
