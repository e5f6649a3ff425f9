from django.apps import AppConfig


class MigrateBenchConfig(AppConfig):
    """A tenant app whose migrations the fleet benchmark and tests apply stage by stage."""

    name = "benchmarks.migrate_bench_app"
    label = "migrate_bench_app"
    default_auto_field = "django.db.models.BigAutoField"
