from django.contrib import admin

from accounts.admin import PlatformOnlyAdmin
from tenants.models import Domain, Tenant


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Tenant)
class TenantAdmin(PlatformOnlyAdmin, admin.ModelAdmin):
    """Platform staff manage tenants here; schemas are handled by tenants.services."""

    list_display = ["name", "slug", "schema_name", "is_active", "owner", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug", "domains__domain"]
    readonly_fields = ["schema_name", "created_at"]
    raw_id_fields = ["owner"]
    inlines = [DomainInline]

    def get_readonly_fields(self, request, obj=None):
        # Slug and schema are renamed by a command that moves the schema too.
        return [*self.readonly_fields, "slug"] if obj else self.readonly_fields


@admin.register(Domain)
class DomainAdmin(PlatformOnlyAdmin, admin.ModelAdmin):
    list_display = ["domain", "tenant", "is_primary"]
    list_select_related = ["tenant"]
    search_fields = ["domain", "tenant__name"]
    raw_id_fields = ["tenant"]
