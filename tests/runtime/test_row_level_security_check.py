"""tenants.E002: every tenant-owned model's migrations put row-level security on its table.

Static (the migration files), so it runs in every mode: a model added without the operation is
an error on SQLite too, before it ever reaches a PostgreSQL database."""

from django.core import checks
from django.db import models
from django.test.utils import isolate_apps

from tenants.checks import check_row_level_security
from tenants.models import TenantOwnedModel


def test_every_tenant_owned_model_of_the_project_has_its_policy_in_a_migration():
    assert check_row_level_security() == []


def test_a_tenant_owned_model_without_the_operation_is_an_error():
    with isolate_apps("tests") as test_apps:

        class Invoice(TenantOwnedModel):
            total = models.IntegerField()

            class Meta:
                app_label = "tests"
                indexes = [models.Index(fields=["tenant", "total"])]

        class Report(models.Model):  # not tenant-owned: nothing to say
            class Meta:
                app_label = "tests"

            def __str__(self):
                return "report"

        errors = check_row_level_security(app_configs=[test_apps.get_app_config("tests")])
    assert [(e.id, e.obj) for e in errors] == [("tenants.E002", Invoice)]
    assert isinstance(errors[0], checks.Error)
    assert "tenants.rls.RowLevelSecurity('invoice')" in errors[0].hint
