from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.models import LogEntry
from django.core.exceptions import ValidationError

from accounts.access import may_use_admin
from tenants.conf import schema_mode


class TenantLoggedAdmin:
    """A ModelAdmin whose log entries are marked with the current tenant (row mode): the site
    adds it to every ModelAdmin registered, so no entry goes unmarked."""

    def log_addition(self, request, obj, message):
        return _mark_current_tenant(super().log_addition(request, obj, message))

    def log_change(self, request, obj, message):
        return _mark_current_tenant(super().log_change(request, obj, message))

    def log_deletions(self, request, queryset):
        return _mark_current_tenant(super().log_deletions(request, queryset))


def _mark_current_tenant(entries):
    if not schema_mode():
        from accounts.models import LogEntryTenant

        batch = [entries] if isinstance(entries, LogEntry) else list(entries)
        LogEntryTenant.objects.bulk_create([LogEntryTenant(entry=entry) for entry in batch])
    return entries


class TenantAdminAuthenticationForm(AdminAuthenticationForm):
    def confirm_login_allowed(self, user):
        if not may_use_admin(user):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class TenantAdminSite(admin.AdminSite):
    """One admin, every host: each tenant's members manage that tenant's data only.

    Data is scoped by the tenant-owned managers, not here; this decides who gets in.
    """

    login_form = TenantAdminAuthenticationForm

    def has_permission(self, request):
        return may_use_admin(request.user)

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, TenantLoggedAdmin):
            admin_class = type(admin_class.__name__, (TenantLoggedAdmin, admin_class), {})
        super().register(model_or_iterable, admin_class, **options)

    def get_log_entries(self, request):
        """The current tenant's entries only ("Recent actions"). Row mode shares one log table
        among every site (a person may be a member of several); schema mode has one per
        schema."""
        entries = super().get_log_entries(request)
        if schema_mode():
            return entries
        from accounts.models import LogEntryTenant

        return entries.filter(pk__in=LogEntryTenant.objects.values("entry_id"))

    def each_context(self, request):
        context = super().each_context(request)
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            context["site_header"] = f"{tenant.name} administration"
            context["site_title"] = tenant.name
            context["site_url"] = "/"
        return context
