"""The tenancy questions every layer asks of the settings, answered in one place.

Each reads ``django.conf.settings`` when called (tests override settings), and nothing here
touches the database.
"""

from __future__ import annotations

from django.conf import settings


def schema_mode() -> bool:
    """Whether each tenant has a PostgreSQL schema of its own (``TENANCY_MODE=schema``)
    rather than rows with a tenant column in shared tables (``row``)."""
    return settings.TENANCY_MODE == "schema"


def public_schema() -> str:
    """The schema of platform data in schema mode: tenants, domains, platform accounts, and
    the platform's own site."""
    return settings.PUBLIC_SCHEMA_NAME


def platform_slug() -> str:
    """The slug of the platform's own site (``TENANCY_DEFAULT_TENANT``)."""
    return settings.TENANCY_DEFAULT_TENANT


def is_platform_slug(slug: str | None) -> bool:
    """Whether the tenant with this slug is the platform's own site
    (``TENANCY_DEFAULT_TENANT``): it serves unknown hosts, sign-up and platform accounts, and
    in schema mode lives in the public schema."""
    return slug == platform_slug()


def is_platform_tenant(tenant) -> bool:
    """Whether ``tenant`` (possibly None) is the platform's own site."""
    return tenant is not None and tenant.is_default


def site_domain(slug: str) -> str:
    """The primary domain a tenant gets unless told otherwise: ``<slug>.<TENANT_BASE_DOMAIN>``."""
    return f"{slug}.{settings.TENANT_BASE_DOMAIN}"
