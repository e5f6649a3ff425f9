"""Views that read and write tenant-owned rows past the ORM's row filter, the way a forgotten
filter, a report in raw SQL or a third-party manager would: only PostgreSQL's row-level security
keeps them to the request's tenant (tests/runtime/test_row_level_security.py)."""

from django.db import DatabaseError, connection, transaction
from django.http import JsonResponse
from django.urls import include, path

from home.models import PageContent
from tenants.runtime.context import scopes_disabled


def _tenant_ids(rows) -> list[int]:
    return sorted({row.tenant_id if hasattr(row, "tenant_id") else row[0] for row in rows})


def raw_cursor(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT tenant_id FROM home_pagecontent")
        return JsonResponse({"tenants": _tenant_ids(cursor.fetchall())})


def raw_queryset(request):
    return JsonResponse(
        {"tenants": _tenant_ids(PageContent.objects.raw("SELECT * FROM home_pagecontent"))}
    )


def unscoped_manager(request):
    with scopes_disabled():
        return JsonResponse({"tenants": _tenant_ids(PageContent.objects.all())})


def insert_for(request, tenant_id):
    """A row for ``tenant_id`` written in raw SQL; the answer says whether PostgreSQL took it."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO home_pagecontent (tenant_id, title, body, ordering, published, "
                "updated_at) VALUES (%s, 'smuggled', '', 1, true, now()) RETURNING id",
                [tenant_id],
            )
            return JsonResponse({"inserted": cursor.fetchone()[0]})
    except DatabaseError as error:
        return JsonResponse({"refused": str(error).splitlines()[0]}, status=403)


urlpatterns = [
    path("probe/rls/cursor/", raw_cursor),
    path("probe/rls/raw/", raw_queryset),
    path("probe/rls/unscoped/", unscoped_manager),
    path("probe/rls/insert/<int:tenant_id>/", insert_for),
    path("", include("config.urls")),
]
