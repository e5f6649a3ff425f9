from django.conf import settings
from django.utils.functional import SimpleLazyObject

from home.models import SiteSettings


def site(request):
    """``branding`` (the current tenant's SiteSettings, read from the cache when first used)
    and ``base_domain`` (where self-service sites live)."""
    context = {"base_domain": settings.TENANT_BASE_DOMAIN}
    if getattr(request, "tenant", None) is not None:
        context["branding"] = SimpleLazyObject(SiteSettings.current)
    return context
