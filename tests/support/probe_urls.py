"""A URLconf for tests that need to see a request from the inside."""

import asyncio

from django.http import JsonResponse
from django.urls import include, path

from tenants.runtime.context import current_tenant


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


async def probe_schema(request):
    """Which schema this request's queries run in, on the request thread and a pool thread."""
    from asgiref.sync import sync_to_async
    from django.db import connection

    def schema():
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_schema()")
            return cursor.fetchone()[0]

    def schema_then_close():
        try:
            return schema()
        finally:
            connection.close()  # pool threads outlive the request

    tenant = current_tenant()
    on_request_thread = await sync_to_async(schema)()
    await asyncio.sleep(0)  # let other requests interleave
    on_pool_thread = await sync_to_async(schema_then_close, thread_sensitive=False)()
    return JsonResponse(
        {"tenant": tenant.slug, "schema": on_request_thread, "worker_schema": on_pool_thread}
    )


urlpatterns.insert(0, path("probe/schema/", probe_schema))
