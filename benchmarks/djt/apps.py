from django.apps import AppConfig


class DjtConfig(AppConfig):
    name = "benchmarks.djt"
    label = "djt"
    default_auto_field = "django.db.models.BigAutoField"
