from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from accounts.access import may_use_admin


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

    def each_context(self, request):
        context = super().each_context(request)
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            context["site_header"] = f"{tenant.name} administration"
            context["site_title"] = tenant.name
            context["site_url"] = "/"
        return context
