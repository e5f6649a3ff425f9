from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenancy"

    def ready(self):
        from tenants import checks  # noqa: F401  (system checks)
        from tenants.runtime import signals  # noqa: F401  (cache invalidation)
