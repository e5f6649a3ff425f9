from django import forms
from django.contrib import admin
from django.db import transaction

from accounts.admin import PlatformOnlyAdmin
from tenants.conf import site_domain
from tenants.models import Domain, Tenant
from tenants.provisioning.services import create_tenant, slug_unavailable
from tenants.provisioning.starter import starter_pages
from tenants.runtime.normalize import normalize_host


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


class TenantAddForm(forms.ModelForm):
    """Adding a tenant: the same name rules as sign-up; the service makes the rest."""

    domain = forms.CharField(
        required=False,
        max_length=253,
        help_text="Primary domain. Empty: <slug>.TENANT_BASE_DOMAIN.",
    )

    class Meta:
        model = Tenant
        fields = ["name", "slug", "owner"]

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        problem = slug_unavailable(slug)
        if problem:
            raise forms.ValidationError(problem)
        return slug

    def clean_domain(self):
        raw = self.cleaned_data.get("domain", "").strip()
        if not raw:
            return ""
        domain = normalize_host(raw)
        if domain is None or ":" in raw:
            raise forms.ValidationError("Enter a valid host name, such as shop.example.com.")
        if Domain.objects.filter(domain=domain).exists():
            raise forms.ValidationError(f"{domain} already serves another site.")
        return domain


@admin.register(Tenant)
class TenantAdmin(PlatformOnlyAdmin, admin.ModelAdmin):
    """Platform staff manage tenants here. Adding one goes through
    tenants.provisioning.services.create_tenant (schema, domain, starter content and the
    owner's access, in one transaction)."""

    list_display = ["name", "slug", "schema_name", "is_active", "owner", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug", "domains__domain"]
    readonly_fields = ["schema_name", "created_at"]
    raw_id_fields = ["owner"]
    inlines = [DomainInline]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = TenantAddForm
            kwargs["fields"] = ["name", "slug", "owner", "domain"]
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ["name", "slug", "domain", "owner"]})]
        return super().get_fieldsets(request, obj)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def get_readonly_fields(self, request, obj=None):
        # Slug and schema are renamed by a command that moves the schema too.
        return [*self.readonly_fields, "slug"] if obj else []

    def delete_queryset(self, request, queryset):
        """ "Delete selected" deletes each tenant as its own delete view does (``Tenant.delete``:
        its rows in every table, on its cell too), not with one bulk DELETE that leaves them."""
        with transaction.atomic():
            for tenant in queryset:
                tenant.delete()

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        result = create_tenant(
            name=obj.name,
            slug=obj.slug,
            domain=form.cleaned_data.get("domain") or site_domain(obj.slug),
            owner=obj.owner,
            pages=starter_pages(obj.name),
        )
        # The admin goes on with ``obj`` (log entry, redirect): make it the saved tenant.
        for field in Tenant._meta.concrete_fields:
            setattr(obj, field.attname, getattr(result.tenant, field.attname))
        obj._state.adding = False
        obj._state.db = result.tenant._state.db


@admin.register(Domain)
class DomainAdmin(PlatformOnlyAdmin, admin.ModelAdmin):
    list_display = ["domain", "tenant", "is_primary"]
    list_select_related = ["tenant"]
    search_fields = ["domain", "tenant__name"]
    raw_id_fields = ["tenant"]
