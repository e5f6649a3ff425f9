"""Tenants, their domains, and the base class of every tenant-owned model."""

from contextlib import nullcontext

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Upper
from django.utils.functional import cached_property
from django_tenants.models import DomainMixin, TenantMixin

from tenants.conf import is_platform_slug, public_schema, schema_mode
from tenants.internals import ForeignKeyIdAttribute
from tenants.runtime.context import current_tenant, scopes_disabled, tenant_context
from tenants.runtime.normalize import normalize_host
from tenants.runtime.scoping import (
    CrossTenantWrite,
    CurrentTenantDescriptor,
    TenantManager,
    TenantRequired,
)
from tenants.validators import SLUG_MAX_LENGTH, TenantSlugValidator


class PlatformTableManager(models.Manager):
    """Base manager of platform tables, which live in the public schema in schema mode.

    From inside a tenant's schema those tables are out of sight (its search_path is its own
    schema only), and nothing there can point at them: a tenant-schema user owns no tenant.
    So related lookups made from there (Django's delete collector looking for the tenants a
    user owns) find nothing instead of failing on a missing table.
    """

    def get_queryset(self):
        queryset = super().get_queryset()
        tenant = current_tenant()
        if schema_mode() and tenant is not None and tenant.schema_name != public_schema():
            return queryset.none()
        return queryset


class Tenant(TenantMixin):
    """A customer site. ``schema_name`` (from django-tenants) is only used in schema mode."""

    # Schemas are made by tenants.provisioning, never as a side effect of save().
    auto_create_schema = False
    auto_drop_schema = False

    name = models.CharField(max_length=100)
    slug = models.CharField(
        max_length=SLUG_MAX_LENGTH,
        unique=True,
        validators=[TenantSlugValidator()],
        help_text="DNS label of the site's subdomain; also gives its PostgreSQL schema name.",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="owned_tenants",
    )
    is_active = models.BooleanField(default=True)
    # The cell (PostgreSQL server) holding the tenant's data: a name of TENANCY_CELLS, or "" for
    # the control database itself (tenants.cells, docs/cells.md).
    cell = models.CharField(max_length=31, blank=True, default="", db_default="", db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = models.Manager()
    in_current_schema = PlatformTableManager()

    class Meta:
        db_table = "tenants_tenant"
        ordering = ["name"]
        base_manager_name = "in_current_schema"
        indexes = [
            # django-tenants' save() checks a new schema name case-blind (schema_name__iexact,
            # UPPER(...) = UPPER(...)): without this every sign-up reads the whole table
            # (53 ms at 100,000 tenants; docs/cells-capacity.md).
            models.Index(Upper("schema_name"), name="tenants_schema_name_upper"),
        ]

    def __str__(self):
        return self.name

    def delete(self, *args, **kwargs):
        """Its domains and (row mode) its rows in every tenant-owned table go with it, whatever
        tenant is active: the delete collector looks for them with the row filter off, and in
        row mode from this tenant's own context, where row-level security shows its rows."""
        own = tenant_context(self) if self.pk is not None and not schema_mode() else nullcontext()
        with own, scopes_disabled():
            if self.cell and not schema_mode():
                from tenants.cells import delete_cell_rows

                delete_cell_rows(self)  # Django's cascade looks on this row's database only
            return super().delete(*args, **kwargs)

    @property
    def primary_domain(self) -> str | None:
        """The primary domain name; prefilled by the resolver so requests need no query."""
        if not hasattr(self, "_primary_domain"):
            domain = self.domains.filter(is_primary=True).values_list("domain", flat=True)
            self._primary_domain = domain.first()
        return self._primary_domain

    def url(self, path: str = "/", request=None) -> str:
        """Absolute URL on this tenant's primary domain (never from a raw Host header)."""
        scheme = settings.TENANCY_URL_SCHEME or (
            "https" if request is not None and request.is_secure() else "http"
        )
        port = _url_port(request, scheme)
        return f"{scheme}://{self.primary_domain}{port}{path}"

    @cached_property
    def is_default(self) -> bool:
        # Asked several times per page (templates); a renamed tenant is a new object in the
        # resolver's cache (saving a tenant invalidates it).
        return is_platform_slug(self.slug)


def _url_port(request, scheme: str) -> str:
    configured = settings.TENANCY_URL_PORT
    if configured is not None:
        port = str(configured)
    elif request is not None:
        port = str(request.META.get("SERVER_PORT", ""))  # the socket's port, not the Host's
    else:
        port = ""
    if not port or (scheme, port) in (("http", "80"), ("https", "443")):
        return ""
    return f":{port}"


class Domain(DomainMixin):
    """A host name that serves a tenant. Stored normalised (see tenants.runtime.normalize)."""

    objects = models.Manager()
    in_current_schema = PlatformTableManager()

    class Meta:
        db_table = "tenants_domain"
        ordering = ["domain"]
        base_manager_name = "in_current_schema"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"],
                condition=models.Q(is_primary=True),
                name="tenants_domain_one_primary_per_tenant",
            )
        ]

    def clean(self):
        normalised = normalize_host(self.domain or "")
        if normalised is None:
            raise ValidationError({"domain": "Enter a valid host name, such as shop.example.com."})
        self.domain = normalised

    def save(self, *args, **kwargs):
        normalised = normalize_host(self.domain or "")
        if normalised is None:
            raise ValidationError(f"{self.domain!r} is not a valid host name.")
        self.domain = normalised
        super().save(*args, **kwargs)


class Generation(models.Model):
    """One row counting changes to tenants and domains, bumped in the same transaction as each
    change (tenants.runtime.signals). Every process compares it with the value it last read, at
    most once per ``TENANCY_RESOLVER_REVALIDATE_SECONDS``, and forgets its host lookups when it
    moved: invalidation that needs no shared cache. A platform table (public schema)."""

    value = models.BigIntegerField(default=0)

    class Meta:
        db_table = "tenants_generation"

    def __str__(self):
        return f"generation {self.value}"


# --- Tenant-owned models -----------------------------------------------------------------------


class TenantForeignKey(models.ForeignKey):
    forward_related_accessor_class = CurrentTenantDescriptor
    descriptor_class = ForeignKeyIdAttribute

    def get_db_converters(self, connection):
        # An integer id needs no conversion on any backend (ForeignKey adds one for Oracle's
        # empty strings only): spares the lookup chain on every query that selects it.
        return []

    def get_col(self, alias, output_field=None):
        # Django reuses a column expression per plain field (Field.cached_col) but builds a new
        # one for a foreign key on every query, and recomputes its identity (hash) each time.
        # Every tenant-owned query selects and filters this column: reuse it too.
        if output_field is None and alias == self.model._meta.db_table:
            return self._own_table_col
        return super().get_col(alias, output_field)

    @cached_property
    def _own_table_col(self):
        return super().get_col(self.model._meta.db_table)


class TenantOwnedModel(models.Model):
    """Base class of models whose rows belong to one tenant.

    Subclasses write ordinary Django: ``Model.objects`` only ever sees the current tenant's rows
    and new rows get the current tenant. Code that must cross tenants uses
    ``with scopes_disabled():`` and sets ``tenant`` itself.
    """

    # No database-level constraint: in schema mode it would tie every tenant schema to
    # public.tenants_tenant (a trigger per schema on that table, and a lock on it for each new
    # schema, serialising sign-ups). Rows get their tenant from the context, never from input,
    # and tenants are deleted through Django (row mode) or with their schema (schema mode).
    # No index of its own either: every query filters on the tenant, so each model declares an
    # index or unique constraint that starts with it and serves its queries (check
    # tenants.W001); a lone tenant index next to it would be one more index to write, store in
    # every tenant schema and weigh in every query plan, for nothing.
    # docs/decisions/0001-tenant-column-without-foreign-key-or-lone-index.md
    tenant = TenantForeignKey(
        "tenants.Tenant",
        on_delete=models.CASCADE,
        editable=False,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )

    objects = TenantManager()

    class Meta:
        abstract = True
        # Django reaches rows through the base manager where it must not lose any: related
        # objects (``page.folder``), ``refresh_from_db()``, the delete collector, the admin's
        # view-on-site. Unscoped, those would read and delete other tenants' rows; scoped, they
        # fail closed like every other query. Platform code opts out with scopes_disabled().
        base_manager_name = "objects"

    def save(self, *args, **kwargs):
        self.assign_current_tenant()
        super().save(*args, **kwargs)

    def assign_current_tenant(self):
        tenant = current_tenant()
        if self.tenant_id is None:
            if tenant is None:
                raise TenantRequired(
                    f"{type(self).__name__} belongs to a tenant but none is active; "
                    "use tenants.runtime.context.tenant_context() or set .tenant explicitly."
                )
            self.tenant = tenant
        elif tenant is not None and self.tenant_id != tenant.pk:
            raise CrossTenantWrite(
                f"{type(self).__name__} of tenant {self.tenant_id} saved while tenant "
                f"{tenant.pk} is active."
            )
