from django.utils.functional import SimpleLazyObject

from benchmarks.plain.models import Branding


def site(request):
    """home.context_processors.site for a site without tenants: the same lazy ``branding``."""
    name = request.tenant.name if hasattr(request, "tenant") else ""
    return {
        "base_domain": "localhost",
        "branding": SimpleLazyObject(lambda: Branding.current(fallback_name=name)),
    }
