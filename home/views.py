from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

from home.models import PageContent, SiteSettings
from tenants.models import Tenant


def index(request):
    """The tenant's home page; on the platform's own host, the platform's landing page."""
    pages = PageContent.objects.filter(published=True)
    if request.tenant.is_default:
        return render(
            request, "home/landing.html", {"pages": pages, "my_sites": _my_sites(request)}
        )
    return render(request, "home/index.html", {"pages": pages})


def page(request, pk):
    content = get_object_or_404(PageContent, pk=pk, published=True)
    return render(request, "home/page.html", {"page": content})


@require_safe
@cache_control(max_age=3600)
def favicon(request):
    """``/favicon.ico``, which clients ask for without reading the page: the site's icon (its
    logo, else the platform's), as the pages declare it."""
    return redirect(SiteSettings.current().icon_url)


def _my_sites(request) -> list[dict]:
    """The sites the signed-in person owns, with absolute links to each and to its admin."""
    if not request.user.is_authenticated:
        return []
    return [
        {
            "name": tenant.name,
            "url": tenant.url("/", request=request),
            "admin_url": tenant.url("/admin/", request=request),
            "is_active": tenant.is_active,
        }
        for tenant in Tenant.objects.filter(owner=request.user)
    ]
