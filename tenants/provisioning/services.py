"""Multi-step tenancy operations. Each is one transaction: it happens whole or not at all.

Provisioning a tenant (``create_tenant``, and ``provision_tenant_for_user`` for self-service
sites) makes, in this order and in one transaction:

1. ``schema``/``clone``: its schema with every tenant table (schema mode; see
   ``tenants.provisioning.schema_factory``: a renamed spare, or the template script);
2. ``tenant``: the Tenant row, with its owner;
3. ``domain``: its primary Domain;
4. ``content``: its first pages;
5. ``owner``: the owner's admin access on the new site: a ``Membership(role=owner)`` for the
   shared user (row mode), or a copy of the user in the tenant's own schema (same password
   hash: the password is hashed once, at sign-up) with that membership (schema mode).

If any step fails the transaction is rolled back, and with it everything before (PostgreSQL
rolls back DDL too): no tenant row, schema, domain, content or access remains. The schema comes
first. Making it takes no lock on ``tenants_tenant``: a tenant schema holds no foreign key into
public (the tenant column has no database constraint,
docs/decisions/0001-tenant-column-without-foreign-key-or-lone-index.md), so concurrent sign-ups
do not queue on that table. A migration that added such a key would bring the lock back (the
template script adds keys to other schemas last).

``provisioning_step`` is sent after each step (``step=<name>``) for monitoring and for tests
that inject a failure at a given step.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.dispatch import Signal

from tenants import cells
from tenants.cellconfig import CONTROL, alias_for_cell
from tenants.conf import is_platform_slug, public_schema, schema_mode, site_domain
from tenants.models import Domain, Tenant
from tenants.provisioning.starter import starter_pages
from tenants.runtime.context import no_tenant, tenant_context
from tenants.validators import (
    schema_name_for_slug,
    slug_for_username,
    tenant_slug_problem,
    username_slug_problem,
)

# Sent after each provisioning step: step ("schema", "clone", "tenant", "domain", "content",
# "owner"), slug, and tenant (None before the "tenant" step).
provisioning_step = Signal()


@dataclass(frozen=True)
class Provisioned:
    tenant: Tenant
    domain: Domain
    message: str


class SiteNameUnavailable(ValidationError):
    """The site name (slug, schema or domain) is invalid, reserved or taken; nothing was made."""

    def __init__(self, slug: str, reason: str):
        super().__init__(reason, code="site_name_unavailable")
        self.slug = slug
        self.reason = reason


def name_in_use(
    slug: str, schema_name: str, domain: str, using: str = DEFAULT_DB_ALIAS
) -> str | None:
    """Why a new tenant cannot have this slug, schema or domain (one query), or None.

    A schema of that name with no tenant (left by something else) counts as taken too, on the
    control database and on the cell ``using`` the tenant is placed in.
    """
    qn = connection.ops.quote_name
    # Exact matches use the unique indexes (flat in fleet size); schema names that differ only
    # in case are refused by TenantMixin.save() (a ValidationError) and never made here.
    checks = [
        f"EXISTS (SELECT 1 FROM {qn(Tenant._meta.db_table)} WHERE slug = %s OR schema_name = %s)",
        f"EXISTS (SELECT 1 FROM {qn(Domain._meta.db_table)} WHERE domain = %s)",
    ]
    params = [slug, schema_name, domain]
    if schema_mode() and schema_name != public_schema():
        checks.append("EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s)")
        params.append(schema_name)
    with no_tenant(), connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(checks)}", params)
        in_use = cursor.fetchone()
    if in_use[0] or in_use[2:] == (True,):
        return f"The site name '{slug}' is taken."
    if in_use[1]:
        return f"{domain} already serves another site."
    if using != DEFAULT_DB_ALIAS and schema_mode():
        with no_tenant(), connections[using].cursor() as cursor:
            cursor.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s)", [schema_name]
            )
            if cursor.fetchone()[0]:
                return f"The site name '{slug}' is taken."
    return None


def take_turns_with_same_name(schema_name: str) -> None:
    """Wait until no other transaction is provisioning a tenant of this schema name
    (PostgreSQL; a transaction-level advisory lock, held until this transaction ends).

    Sign-ups whose usernames differ only in case, ``-`` or ``_`` are different users with the
    same slug and schema. Unique constraints make the loser of a race on one name wait and see
    the winner's row ("taken"); a schema has none of its own to wait on, so the loser's ``ALTER
    SCHEMA ... RENAME`` or ``CREATE SCHEMA`` failed instead. Taking turns, the second one's
    ``name_in_use()`` sees the first one's committed tenant and is refused like any taken name.
    """
    if connection.vendor != "postgresql":
        return  # SQLite runs one writing transaction at a time anyway
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"tenants.provisioning:{schema_name}"],
        )


def slug_unavailable(slug: str) -> str | None:
    """Why a self-service site cannot be called ``slug`` (invalid, reserved, taken), or None."""
    problem = tenant_slug_problem(slug)
    if problem:
        return problem
    return name_in_use(slug, schema_name_for_slug(slug), site_domain(slug))


@transaction.atomic
def create_tenant(
    *,
    name: str,
    slug: str,
    domain: str,
    owner=None,
    schema_name: str | None = None,
    pages: list[dict] | None = None,
    reserved_ok: bool = False,
    cell: str | None = None,
) -> Provisioned:
    """Create a tenant with its schema (schema mode), primary domain, first pages and, given an
    owner, the owner's admin access on the new site.

    The tenant goes to ``cell`` if given (``NoCellAvailable`` if it is down), else to the cell
    the placement policy picks (``tenants.cells.place``); the platform's own site always stays
    on the control database. With a cell, its writes are a transaction of their own inside this
    one and commit just before it: a failure of the control database's commit after that leaves
    an orphan schema in the cell (``clean_orphan_schemas``), never a tenant without its data.

    Raises ``ValidationError`` for an invalid name or domain, and ``SiteNameUnavailable`` (a
    ValidationError) if the slug is reserved or the slug, schema or domain taken, before
    anything is written. Reserved names are the platform's: its own site
    (TENANCY_DEFAULT_TENANT) may take its slug, and ``reserved_ok`` lets the demo seed make the
    demo tenants the names are kept for.
    """
    placed = CONTROL if is_platform_slug(slug) else cells.place(cell)
    using = alias_for_cell(placed)
    if using == DEFAULT_DB_ALIAS:
        return _create_tenant(name, slug, domain, owner, schema_name, pages, reserved_ok, placed)
    # Entered with no tenant: the cell's connection (and its pool's check) may open here, and
    # the caller's tenant (the platform's, for a sign-up) does not live in that cell.
    with no_tenant(), transaction.atomic(using=using):
        return _create_tenant(name, slug, domain, owner, schema_name, pages, reserved_ok, placed)


def _create_tenant(name, slug, domain, owner, schema_name, pages, reserved_ok, placed):
    using = alias_for_cell(placed)
    with no_tenant():
        tenant = Tenant(
            name=name,
            slug=slug,
            owner=owner,
            schema_name=schema_name or schema_name_for_slug(slug),
            cell="" if placed == CONTROL else placed,
        )
        tenant.full_clean(exclude=["owner"], validate_unique=False)
        primary = Domain(domain=domain, is_primary=True)
        primary.full_clean(exclude=["tenant"], validate_unique=False)
        take_turns_with_same_name(tenant.schema_name)
        problem = name_in_use(tenant.slug, tenant.schema_name, primary.domain, using)
        if problem is None and not (reserved_ok or is_platform_slug(slug)):
            problem = tenant_slug_problem(slug)
        if problem:
            raise SiteNameUnavailable(slug, problem)

        def step(step_name, current=None):
            provisioning_step.send(create_tenant, step=step_name, slug=slug, tenant=current)

        if schema_mode() and tenant.schema_name != public_schema():
            from tenants.provisioning.schema_factory import create_tenant_schema

            create_tenant_schema(tenant.schema_name, on_step=step, using=using)
        tenant.save()  # its post_save clears the host lookups once this commits
        step("tenant", tenant)
        primary.tenant = tenant
        # A new tenant has no other domain to demote from primary, which is all that
        # Domain.save() would add to this one INSERT (in a savepoint of its own).
        Domain.objects.bulk_create([primary])
        tenant._primary_domain = primary.domain
        step("domain", tenant)
    if pages:
        from home.content import add_pages

        with tenant_context(tenant):
            add_pages(pages)
        step("content", tenant)
    if owner is not None:
        grant_owner_access(tenant, owner)
        step("owner", tenant)
    return Provisioned(tenant, primary, f"{tenant.name} is live at {primary.domain}.")


def grant_owner_access(tenant: Tenant, user) -> None:
    """Make ``user`` (a platform account) an owner of ``tenant``'s site, able to sign in to its
    admin at once. Safe to repeat: an existing member becomes an owner.

    Row mode, and the platform's own site in schema mode: a membership of the platform account
    itself. Schema mode: each tenant schema has its own ``auth_user``; the owner gets a row there
    with the same username, e-mail, names and *password hash* (no new hashing), and the
    membership is made there. Never staff or superuser: access comes from the membership alone.
    """
    from django.contrib.auth import get_user_model

    from accounts.models import Membership

    with tenant_context(tenant):
        if schema_mode() and not tenant.is_default:
            User = get_user_model()
            member = User.objects.filter(username=user.get_username()).first()
            if member is None:
                member = User(
                    username=user.get_username(),
                    email=user.email,
                    password=user.password,
                    first_name=user.first_name,
                    last_name=user.last_name,
                    is_active=True,
                    date_joined=user.date_joined,
                )
                member.save()
        else:
            member = user
        membership = Membership.objects.filter(user=member).first()
        if membership is None:
            Membership.objects.create(user=member, role=Membership.Role.OWNER)
        elif membership.role != Membership.Role.OWNER:
            membership.role = Membership.Role.OWNER
            membership.save(update_fields=["role"])


def default_site_name(user) -> str:
    return f"{user.get_username()}'s site"


def provision_tenant_for_user(user, *, name: str | None = None, slug: str | None = None):
    """The self-service site of ``user``: ``<slug>.<TENANT_BASE_DOMAIN>``, owned by ``user``.

    The slug comes from the username unless given. Raises ``SiteNameUnavailable`` (nothing
    created) if the name is invalid, reserved or taken. Returns ``Provisioned``.
    """
    if slug is None:
        slug = slug_for_username(user.get_username())
        problem = username_slug_problem(user.get_username())
    else:
        problem = tenant_slug_problem(slug)
    if problem:
        raise SiteNameUnavailable(slug, problem)
    name = (name or "").strip() or default_site_name(user)
    return create_tenant(
        name=name, slug=slug, domain=site_domain(slug), owner=user, pages=starter_pages(name)
    )
