"""What operators do to tenants after they exist: find, (de)activate, rename, delete, domains.

Each operation is one transaction (schema DDL included: PostgreSQL's DDL is transactional), so
it happens whole or not at all; the caches of host lookups follow through tenants.runtime.signals.
Problems an operator can fix are ``OperationError``s with a message that says what to do.
"""

from __future__ import annotations

from contextlib import contextmanager

from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone
from psycopg import sql

from tenants import media, postgres
from tenants.cells import alias_of, delete_cell_rows
from tenants.conf import schema_mode, site_domain
from tenants.models import Domain, Tenant
from tenants.runtime.context import no_tenant, scopes_disabled, tenant_context
from tenants.runtime.normalize import normalize_host
from tenants.validators import schema_name_for_slug, tenant_slug_problem


class OperationError(Exception):
    """An operator's request that cannot be done as asked; the message says why."""


# --- Finding -------------------------------------------------------------------------------------


def find_tenant(ident: str) -> Tenant:
    """The tenant named by slug, domain, schema name or numeric id."""
    ident = (ident or "").strip()
    with no_tenant():
        query = Q(slug=ident) | Q(schema_name=ident)
        if ident.isdigit():
            query |= Q(pk=int(ident))
        host = normalize_host(ident)
        if host:
            query |= Q(domains__domain=host)
        found = list(Tenant.objects.filter(query).distinct()[:2])
    if not found:
        raise OperationError(f"No tenant {ident!r} (give its slug, a domain, or its id).")
    if len(found) > 1:
        names = ", ".join(t.slug for t in found)
        raise OperationError(f"{ident!r} names more than one tenant ({names}); use the slug.")
    return found[0]


def find_domain(name: str) -> Domain:
    host = normalize_host(name or "")
    if host is None:
        raise OperationError(f"{name!r} is not a valid host name.")
    try:
        return Domain.objects.select_related("tenant").get(domain=host)
    except Domain.DoesNotExist:
        raise OperationError(f"No tenant has the domain {host}.") from None


# --- Activation ----------------------------------------------------------------------------------


def set_active(tenant: Tenant, active: bool) -> bool:
    """Activate or deactivate; returns whether anything changed."""
    if not active and tenant.is_default:
        raise OperationError("The default tenant is the platform's own site; it stays active.")
    if tenant.is_active == active:
        return False
    tenant.is_active = active
    tenant.save(update_fields=["is_active"])
    return True


# --- Renaming ------------------------------------------------------------------------------------


@transaction.atomic
def rename_slug(tenant: Tenant, new_slug: str) -> list[str]:
    """Give ``tenant`` a new slug; in schema mode its schema is renamed with it, and its
    ``<slug>.<TENANT_BASE_DOMAIN>`` domain follows. Returns what changed, for the operator."""
    old_slug = tenant.slug
    if new_slug == old_slug:
        raise OperationError(f"{tenant.name} already has the slug {new_slug!r}.")
    if tenant.is_default:
        raise OperationError(
            "The default tenant's slug is TENANCY_DEFAULT_TENANT; change the setting instead."
        )
    with no_tenant():
        if Tenant.objects.filter(slug=new_slug).exclude(pk=tenant.pk).exists():
            raise OperationError(f"Another tenant already has the slug {new_slug!r}.")
        problem = tenant_slug_problem(new_slug)
        if problem:
            raise OperationError(f"{new_slug!r}: {problem}")
        changes = [f"slug {old_slug} -> {new_slug}"]
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
        tenant.slug = new_slug
        if schema_mode():
            old_schema, new_schema = tenant.schema_name, schema_name_for_slug(new_slug)
            # In the tenant's cell; its own transaction there commits just before this one.
            with _in_cell(tenant) as connection, connection.cursor() as cursor:
                if postgres.schema_exists(cursor, new_schema):
                    raise OperationError(f"A schema named {new_schema!r} already exists.")
                cursor.execute(postgres.rename_schema_sql(old_schema, new_schema))
            tenant.schema_name = new_schema
            changes.append(f"schema {old_schema} -> {new_schema}")
        elif tenant.schema_name == schema_name_for_slug(old_slug):
            tenant.schema_name = schema_name_for_slug(new_slug)  # the schema it will get
        tenant.save(update_fields=["slug", "schema_name"])
        old_host, new_host = site_domain(old_slug), site_domain(new_slug)
        domain = Domain.objects.filter(tenant=tenant, domain=old_host).first()
        if domain is not None:
            if Domain.objects.filter(domain=new_host).exists():
                raise OperationError(f"The domain {new_host} is already taken.")
            domain.domain = new_host
            domain.save(update_fields=["domain"])
            changes.append(f"domain {old_host} -> {new_host}")
    return changes


# --- Deleting ------------------------------------------------------------------------------------


@transaction.atomic
def delete_tenant(tenant: Tenant, *, drop_schema: bool) -> list[str]:
    """Delete the tenant, its domains and (row mode) its rows. In schema mode its schema is
    dropped, or with ``drop_schema=False`` kept under an archive name (its links to the
    tenant table cut, and its name free for a new tenant). Its uploaded files go too, or stay
    with an archived schema (``tenants.media.on_tenant_deleted``). Returns what was done."""
    if tenant.is_default:
        raise OperationError("The default tenant is the platform's own site; it cannot go.")
    done = []
    schema = tenant.schema_name
    using = alias_of(tenant)  # the tenant's cell
    if schema_mode() and _schema_exists(schema, using):
        if drop_schema:
            with _in_cell(tenant) as connection, connection.cursor() as cursor:
                cursor.execute(postgres.drop_schema_sql(schema))
            done.append(f"dropped schema {schema} and its data")
        else:
            with _in_cell(tenant):
                archive = archive_schema(schema, using)
            done.append(
                f"kept its data in schema {archive} (DROP SCHEMA {archive} CASCADE to free it)"
            )
    # Row mode: the cascade runs in the tenant's own context, where row-level security lets it
    # see exactly this tenant's rows. Schema mode: from public (its schema is gone or archived).
    with no_tenant() if schema_mode() else tenant_context(tenant), scopes_disabled():
        domains = list(tenant.domains.values_list("domain", flat=True))
        if tenant.cell and not schema_mode():
            delete_cell_rows(tenant)  # row mode: its rows in its cell (Django's cascade: here)
        Tenant.objects.filter(pk=tenant.pk).delete()
    names = ", ".join(domains) or "none"
    done.insert(0, f"deleted tenant {tenant.slug} and its domains ({names})")
    done.append(media.on_tenant_deleted(tenant.pk, keep=schema_mode() and not drop_schema))
    return done


def archive_schema(schema: str, using: str = "default") -> str:
    """Rename a deleted tenant's schema out of the way and drop its foreign keys to public.

    The name starts with "_" like the factory's own schemas: no tenant can take it, and
    ``clean_orphan_schemas`` leaves it alone (it holds data someone chose to keep).
    """
    stamp = timezone.now().strftime("%Y%m%d%H%M%S")
    archive = f"_deleted_{schema[: 63 - len(stamp) - 10]}_{stamp}"
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT r.relname, c.conname FROM pg_constraint c "
            "JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace "
            "JOIN pg_class f ON f.oid = c.confrelid "
            "WHERE c.contype = 'f' AND n.nspname = %s AND f.relnamespace <> n.oid",
            [schema],
        )
        for table, constraint in cursor.fetchall():
            cursor.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    sql.Identifier(schema, table), sql.Identifier(constraint)
                )
            )
        cursor.execute(postgres.rename_schema_sql(schema, archive))
    return archive


def _schema_exists(schema: str, using: str = "default") -> bool:
    with connections[using].cursor() as cursor:
        return postgres.schema_exists(cursor, schema)


@contextmanager
def _in_cell(tenant: Tenant):
    """The connection of ``tenant``'s cell, in a transaction there (nested in the caller's on
    the control database, so the cell commits just before it)."""
    using = alias_of(tenant)
    with transaction.atomic(using=using):
        yield connections[using]


# --- Domains -------------------------------------------------------------------------------------


def _clean_host(name: str) -> str:
    host = normalize_host(name or "")
    if host is None:
        raise OperationError(f"{name!r} is not a valid host name (e.g. shop.example.com).")
    return host


@transaction.atomic
def add_domain(tenant: Tenant, name: str, *, primary: bool = False) -> Domain:
    host = _clean_host(name)
    existing = Domain.objects.select_related("tenant").filter(domain=host).first()
    if existing is not None:
        if existing.tenant_id == tenant.pk:
            raise OperationError(f"{host} already serves {tenant.name}.")
        raise OperationError(
            f"{host} belongs to another tenant ({existing.tenant.slug}); "
            "remove it there first if it should move."
        )
    # DomainMixin.save() makes the first domain primary and demotes the old primary.
    domain = Domain(domain=host, tenant=tenant, is_primary=primary)
    domain.save()
    return domain


@transaction.atomic
def set_primary(domain: Domain) -> bool:
    """Make ``domain`` its tenant's primary domain; returns whether anything changed."""
    if domain.is_primary:
        return False
    domain.is_primary = True
    domain.save(update_fields=["is_primary"])  # DomainMixin.save() demotes the old one
    return True


@transaction.atomic
def remove_domain(domain: Domain) -> None:
    others = Domain.objects.filter(tenant_id=domain.tenant_id).exclude(pk=domain.pk)
    if not others.exists():
        raise OperationError(
            f"{domain.domain} is {domain.tenant.slug}'s only domain; add another first "
            "(or delete the tenant)."
        )
    if domain.is_primary:
        raise OperationError(
            f"{domain.domain} is {domain.tenant.slug}'s primary domain; make another one "
            "primary first (domains set-primary)."
        )
    domain.delete()


def validation_message(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())
    return " ".join(error.messages)
