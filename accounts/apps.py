from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and memberships"
    default = True

    def ready(self):
        from accounts import signals  # noqa: F401  (creating a platform user provisions a site)


class TenantAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with a site that only lets the current tenant's members in."""

    default = False
    default_site = "accounts.admin_site.TenantAdminSite"
