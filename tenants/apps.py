from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenancy"

    def ready(self):
        from tenants import checks, signals  # noqa: F401  (system checks, cache invalidation)
