"""A URLconf for tests that need to see a request from the inside."""

from django.http import JsonResponse
from django.urls import include, path

from tenants.context import current_tenant


def whoami(request):
    tenant = current_tenant()
    return JsonResponse(
        {
            "tenant": tenant.slug if tenant else None,
            "host": request.get_host(),
            "absolute": request.build_absolute_uri("/x"),
        }
    )


urlpatterns = [path("whoami/", whoami), path("", include("config.urls"))]
