from django.apps import AppConfig


class MigrateBenchConfig(AppConfig):
    """A tenant app whose migrations the fleet tests and benchmark apply stage by stage."""

    name = "tests.support.migrate_stages"
    label = "migrate_bench_app"
    default_auto_field = "django.db.models.BigAutoField"
