"""System checks of the tenancy conventions (tenants.checks)."""

from django.apps import apps
from django.core import checks
from django.db import models
from django.test.utils import isolate_apps

from tenants.checks import check_tenant_indexes
from tenants.models import TenantOwnedModel


def test_every_tenant_owned_model_of_the_project_has_an_index_led_by_its_tenant():
    assert check_tenant_indexes() == []
    owned = [m for m in apps.get_models() if issubclass(m, TenantOwnedModel)]
    assert owned  # the check looked at something
    for model in owned:
        assert not model._meta.get_field("tenant").db_index  # no lone index of its own


def test_a_tenant_owned_model_without_such_an_index_gets_a_warning():
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

        warnings = check_tenant_indexes(app_configs=[test_apps.get_app_config("tests")])
    assert [(w.id, w.obj) for w in warnings] == [("tenants.W001", Note)]
    assert isinstance(warnings[0], checks.Warning)
