"""Cache invalidation next to what it protects: any change to a tenant or domain."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from tenants.models import Domain, Tenant
from tenants.runtime.resolution import tenants_changed


@receiver([post_save, post_delete], sender=Tenant)
@receiver([post_save, post_delete], sender=Domain)
def clear_tenant_lookups(sender, **kwargs):
    tenants_changed()
