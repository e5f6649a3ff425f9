"""Multi-step tenancy operations. Each is one transaction: it happens whole or not at all."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from tenants.context import no_tenant, tenant_context
from tenants.models import Domain, Tenant
from tenants.validators import schema_name_for_slug


@dataclass(frozen=True)
class Provisioned:
    tenant: Tenant
    domain: Domain
    message: str


def schema_mode() -> bool:
    return settings.TENANCY_MODE == "schema"


@transaction.atomic
def create_tenant(
    *,
    name: str,
    slug: str,
    domain: str,
    owner=None,
    schema_name: str | None = None,
    pages: list[dict] | None = None,
) -> Provisioned:
    """Create a tenant with its primary domain, its schema (schema mode) and its first pages."""
    with no_tenant():
        tenant = Tenant(
            name=name,
            slug=slug,
            owner=owner,
            schema_name=schema_name or schema_name_for_slug(slug),
        )
        tenant.full_clean()
        tenant.save()
        primary = Domain(domain=domain, tenant=tenant, is_primary=True)
        primary.full_clean(validate_unique=True)
        primary.save()
        tenant._primary_domain = primary.domain
        if schema_mode() and tenant.schema_name != settings.PUBLIC_SCHEMA_NAME:
            tenant.create_schema(check_if_exists=False, verbosity=0)
    if pages:
        from home.content import add_pages

        with tenant_context(tenant):
            add_pages(pages)
    return Provisioned(tenant, primary, f"{tenant.name} is live at {primary.domain}.")
