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


def reserved_problem(slug: str) -> str | None:
    """Why ``slug`` may not be taken by a self-service site (reserved name), or None."""
    reserved = reserved_slugs()
    if slug in reserved or schema_name_for_slug(slug) in reserved:
        return f"The site name '{slug}' is reserved."
    return None


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


def tenant_slug_problem(slug: str) -> str | None:
    """Why ``slug`` cannot name a tenant (format or reserved name), or None: the one check of
    every path that names one (sign-up, ``tenants create``/``rename``, the platform admin's
    "add tenant", ``provision_tenant``). Whether it is taken needs the database:
    tenants.provisioning.services.name_in_use."""
    return slug_problem(slug) or reserved_problem(slug)


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


# --- Self-service sign-up: the site's name comes from the username ------------------------------

_USERNAME_FOR_SLUG_RE = re.compile(r"^[A-Za-z0-9_-]+\Z")


def slug_for_username(username: str) -> str:
    """The slug of a user's site: the username lowercased, ``_`` written as ``-``.

    Only meaningful when :func:`username_slug_problem` finds nothing wrong.
    """
    return username.lower().replace("_", "-")


def username_slug_problem(username: str) -> str | None:
    """Why ``username`` cannot name a self-service site (format and reserved names), or None.

    Whether the name is already taken needs the database: see tenants.provisioning.services.
    """
    if not isinstance(username, str) or not username:
        return "Enter a username."
    # ASCII first: str.lower() turns some non-ASCII letters (the Kelvin sign) into ASCII ones.
    if len(username) > SLUG_MAX_LENGTH:
        return (
            f"Your username is also your site's address, which has at most {SLUG_MAX_LENGTH} "
            "characters."
        )
    if not username.isascii() or not _USERNAME_FOR_SLUG_RE.match(username):
        return (
            "Your username is also your site's address: use only letters a-z, digits, "
            "hyphens and underscores."
        )
    return tenant_slug_problem(slug_for_username(username))
