"""System checks of the tenancy conventions (tenants.checks)."""

from contextlib import contextmanager

from django.apps import apps
from django.core import checks
from django.db import models
from django.test.utils import isolate_apps

from tenants.checks import check_row_level_security, check_tenant_indexes
from tenants.models import TenantOwnedModel


def test_every_tenant_owned_model_of_the_project_has_an_index_led_by_its_tenant():
    assert check_tenant_indexes() == []
    owned = [m for m in apps.get_models() if issubclass(m, TenantOwnedModel)]
    assert owned  # the check looked at something
    for model in owned:
        assert not model._meta.get_field("tenant").db_index  # no lone index of its own


@contextmanager
def models_without_migrations():
    """An app of two tenant-owned models (and a platform one), with no migrations at all:
    ``Note``'s index does not start with its tenant, ``Tag``'s unique constraint does."""
    with isolate_apps("tests") as test_apps:

        class Note(TenantOwnedModel):
            text = models.TextField()

            class Meta:
                app_label = "tests"
                indexes = [models.Index(fields=["text", "tenant"])]  # tenant second: no use

        class Tag(TenantOwnedModel):
            name = models.CharField(max_length=20)

            class Meta:
                app_label = "tests"
                constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="one_tag")]

        class Report(models.Model):  # not tenant-owned: nothing to say
            class Meta:
                app_label = "tests"

            def __str__(self):
                return "report"

        yield [test_apps.get_app_config("tests")], Note, Tag


def test_a_tenant_owned_model_without_such_an_index_gets_a_warning():
    with models_without_migrations() as (app_configs, note, _tag):
        warnings = check_tenant_indexes(app_configs=app_configs)
    assert [(w.id, w.obj) for w in warnings] == [("tenants.W001", note)]
    assert isinstance(warnings[0], checks.Warning)


# tenants.E002: static (the migration files), so it runs in every mode: a model added without
# its policy is an error on SQLite too, before it ever reaches a PostgreSQL database.


def test_every_tenant_owned_model_of_the_project_has_its_policy_in_a_migration():
    assert check_row_level_security() == []


def test_a_tenant_owned_model_without_the_row_level_security_operation_is_an_error():
    with models_without_migrations() as (app_configs, note, tag):
        errors = check_row_level_security(app_configs=app_configs)
    assert [(e.id, e.obj) for e in errors] == [("tenants.E002", note), ("tenants.E002", tag)]
    assert all(isinstance(e, checks.Error) for e in errors)
    assert "tenants.rls.RowLevelSecurity('note')" in errors[0].hint
