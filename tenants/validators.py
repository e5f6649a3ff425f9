"""What makes a tenant slug: a DNS label that maps to a PostgreSQL schema name."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

SLUG_MAX_LENGTH = 63  # DNS label and PostgreSQL identifier limit (bytes; slugs are ASCII)
_SLUG_RE = re.compile(r"^[a-z][a-z0-9-]*\Z")

# Names no self-service tenant may take: PostgreSQL's own schemas, infrastructure hosts and the
# demo tenants. TENANCY_RESERVED_SLUGS adds to it.
BUILTIN_RESERVED_SLUGS = frozenset(
    {
        "public",
        "information-schema",
        "information_schema",
        "pg-catalog",
        "pg-toast",
        "www",
        "admin",
        "api",
        "mail",
        "smtp",
        "static",
        "media",
        "assets",
        "cdn",
        "ftp",
        "default",
        "template",
        "tenant-template",
        "localhost",
        "root",
        "postgres",
        "test",
        "acme",
        "jcw-site",
        "jcwtradehub",
        "techinnov",
        "global",
    }
)


def reserved_slugs() -> frozenset[str]:
    extra = getattr(settings, "TENANCY_RESERVED_SLUGS", ())
    return BUILTIN_RESERVED_SLUGS | {s.lower() for s in extra}


def slug_problem(slug: str) -> str | None:
    """Why ``slug`` is not a valid tenant slug (format only), or None."""
    if not isinstance(slug, str) or not slug:
        return "Enter a site name."
    if len(slug) > SLUG_MAX_LENGTH:
        return f"A site name has at most {SLUG_MAX_LENGTH} characters."
    if not _SLUG_RE.match(slug):
        return (
            "A site name starts with a letter and uses only lowercase letters, digits and hyphens."
        )
    if slug.endswith("-") or "--" in slug:
        return "A site name cannot end with a hyphen or contain two hyphens in a row."
    if slug.startswith("pg-"):
        return "A site name cannot start with 'pg-' (reserved by PostgreSQL)."
    return None


@deconstructible
class TenantSlugValidator:
    message_code = "invalid_slug"

    def __call__(self, value):
        problem = slug_problem(value)
        if problem:
            raise ValidationError(problem, code=self.message_code)

    def __eq__(self, other):
        return isinstance(other, TenantSlugValidator)


def schema_name_for_slug(slug: str) -> str:
    """The PostgreSQL schema of a slug: hyphens become underscores (a bijection for slugs)."""
    return slug.replace("-", "_")
