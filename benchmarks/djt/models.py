from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class Client(TenantMixin):
    """django-tenants' documented tenant model."""

    name = models.CharField(max_length=100)
    auto_create_schema = False  # the benchmark's dataset clones schemas itself


class Domain(DomainMixin):
    pass
