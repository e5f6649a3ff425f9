"""The tenant filter that TenantManager adds in place (its fast path, tenants/runtime/scoping.py) is
the SQL that django-scopes' ``.filter(tenant=pk)`` makes, in every query shape: a scoped query
must never differ from an explicitly filtered one, in either mode."""

import pytest
from django.db.models import Count, F, OuterRef, Subquery, Window
from django.db.models.functions import RowNumber

from home.models import PageContent
from tenants.internals import TenantIs
from tenants.runtime.context import scopes_disabled, tenant_context

pytestmark = pytest.mark.django_db

SHAPES = {
    "all": lambda qs: qs.all(),
    "filter": lambda qs: qs.filter(published=True),
    "exclude": lambda qs: qs.exclude(title="x").filter(ordering__gt=1),
    "values": lambda qs: qs.values_list("title", flat=True).order_by("-id"),
    "aggregate": lambda qs: qs.values("published").annotate(n=Count("id")),
    "select_related": lambda qs: qs.select_related(),
    "slice": lambda qs: qs.filter(published=True)[1:2],
    "only": lambda qs: qs.only("title"),
    "aggregate_having": lambda qs: qs.values("published").annotate(n=Count("id")).filter(n__gt=0),
    "window": lambda qs: qs.annotate(rank=Window(RowNumber(), order_by=F("ordering").asc())),
    "window_filter": lambda qs: qs.annotate(
        rank=Window(RowNumber(), order_by=F("ordering").asc())
    ).filter(rank__lte=2),
}


def scoped(tenant, shape):
    with tenant_context(tenant):
        return str(SHAPES[shape](PageContent.objects).query)


def explicit(tenant, shape):
    with scopes_disabled():
        return str(SHAPES[shape](PageContent.objects.filter(tenant=tenant.pk)).query)


@pytest.mark.parametrize("shape", SHAPES)
def test_scoped_sql_is_the_explicit_filter(tenants, shape):
    acme = tenants["acme"]
    assert f'tenant_id" = {acme.pk}' in scoped(acme, shape)
    assert scoped(acme, shape) == explicit(acme, shape)


def test_scoped_subqueries_keep_their_own_tenant_condition(tenants):
    """Aliases are relabelled in subqueries (U0, ...): the condition must follow them."""
    acme = tenants["acme"]
    with tenant_context(acme):
        inner = PageContent.objects.filter(pk=OuterRef("pk")).values("title")
        outer = PageContent.objects.annotate(same=Subquery(inner)).filter(
            pk__in=PageContent.objects.values("pk")
        )
        sql = str(outer.query)
        rows = list(outer)
    with scopes_disabled():
        base = PageContent.objects.filter(tenant=acme.pk)
        inner = base.filter(pk=OuterRef("pk")).values("title")
        expected = base.annotate(same=Subquery(inner)).filter(pk__in=base.values("pk"))
        assert sql == str(expected.query)
    assert sql.count(f"= {acme.pk}") == 3
    assert rows and all(row.tenant_id == acme.pk and row.same == row.title for row in rows)


def test_fast_condition_compiles_like_djangos_related_lookup(tenants):
    """TenantIs skips the related lookup's generic as_sql; its SQL must be the same."""
    from django.db import connection

    field = PageContent._meta.get_field("tenant")
    with scopes_disabled():
        query = PageContent.objects.all().query
    compiler = query.get_compiler(connection=connection)
    col = field.get_col("home_pagecontent")
    django_lookup = field.get_lookup("exact")(col, tenants["acme"].pk)
    assert TenantIs(col, tenants["acme"].pk).as_sql(compiler, connection) == (
        django_lookup.as_sql(compiler, connection)
    )
