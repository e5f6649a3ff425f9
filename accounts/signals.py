"""Creating a platform user provisions their site (the seed's "auto-creation on registration")."""

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from tenants.conf import is_platform_tenant
from tenants.provisioning.services import provision_tenant_for_user
from tenants.runtime.context import current_tenant, scopes_disabled


def provisions_site(user) -> bool:
    """Whether creating ``user`` here provisions a site for them.

    Users made on the platform's own site, or with no tenant active (shell, commands), do.
    Users made inside a tenant's site (its staff; in schema mode, rows of the tenant's own user
    table, such as the owner's copy made by provisioning) never do.
    """
    if not settings.TENANCY_AUTO_PROVISION or getattr(user, "provision_site", True) is False:
        return False
    if user.is_superuser and not settings.TENANCY_PROVISION_SUPERUSERS:
        return False
    tenant = current_tenant()
    return tenant is None or is_platform_tenant(tenant)


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.provision_site")
def provision_site_for_new_user(sender, instance, created, raw=False, using=None, **kwargs):
    """Provision the new user's site; the result is left on ``instance.provisioned``.

    ``instance.site_name``, if set before saving, names the site; ``instance.provision_site =
    False`` skips it (an operator creating the owner of a tenant they are making). If it fails, the
    user is deleted again before the error goes on: all or nothing, whoever creates the user
    and whether or not they run in a transaction (a shell, ``createsuperuser``).
    """
    if not created or raw or not provisions_site(instance):
        return
    name = getattr(instance, "site_name", None)
    try:
        with transaction.atomic(using=using):
            instance.provisioned = provision_tenant_for_user(instance, name=name)
    except Exception:
        # Platform code: the user's rows in any tenant go with it (none were made here, but
        # the delete collector must look without a tenant, or fail closed and hide the error).
        with scopes_disabled():
            instance.delete(using=using)
        raise
