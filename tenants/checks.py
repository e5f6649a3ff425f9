"""System checks of the tenancy conventions (``manage.py check``)."""

from django.apps import apps
from django.core import checks
from django.db import models


@checks.register(checks.Tags.models)
def check_tenant_indexes(app_configs=None, **kwargs):
    """tenants.W001: a tenant-owned model has no index that starts with its tenant column.

    The tenant column has no index of its own (``TenantOwnedModel.tenant``); each model
    declares the one its queries need, tenant first. Without one, in row mode every query of
    that model reads all tenants' rows.
    """
    from tenants.models import TenantOwnedModel

    warnings = []
    for model in _models(app_configs):
        if not issubclass(model, TenantOwnedModel) or model._meta.proxy:
            continue
        if not _has_index_starting_with_tenant(model):
            warnings.append(
                checks.Warning(
                    f"{model._meta.label} has no index that starts with its tenant column.",
                    hint=(
                        "Add Meta.indexes = [models.Index(fields=['tenant', ...])] (or a "
                        "UniqueConstraint whose fields start with 'tenant') matching the "
                        "model's queries."
                    ),
                    obj=model,
                    id="tenants.W001",
                )
            )
    return warnings


def _has_index_starting_with_tenant(model) -> bool:
    meta = model._meta
    if meta.get_field("tenant").db_index:
        return True
    leading = [index.fields[0] for index in meta.indexes if index.fields]
    leading += [
        constraint.fields[0]
        for constraint in meta.constraints
        if isinstance(constraint, models.UniqueConstraint) and constraint.fields
    ]
    leading += [fields[0] for fields in meta.unique_together if fields]
    return "tenant" in leading


@checks.register(checks.Tags.models)
def check_row_level_security(app_configs=None, **kwargs):
    """tenants.E002: a tenant-owned model's migrations never put the tenant policy on its table
    (``tenants.rls.RowLevelSecurity``), so with row-level security on, PostgreSQL would not keep
    its tenants apart (or, policies being forced, would hide its rows from everyone)."""
    from tenants.models import TenantOwnedModel
    from tenants.rls import declared_policies

    declared = declared_policies()
    errors = []
    for model in _models(app_configs):
        meta = model._meta
        if not issubclass(model, TenantOwnedModel) or meta.proxy or not meta.managed:
            continue
        if (meta.app_label, meta.model_name) not in declared:
            errors.append(
                checks.Error(
                    f"{meta.label}'s migrations do not put row-level security on its table "
                    f"{meta.db_table}.",
                    hint=(
                        f"Add tenants.rls.RowLevelSecurity({meta.model_name!r}) to the "
                        f"operations of a migration of {meta.app_label}, after the one that "
                        "creates the model (docs/row-level-security.md)."
                    ),
                    obj=model,
                    id="tenants.E002",
                )
            )
    return errors


def _models(app_configs):
    if app_configs is None:
        return apps.get_models()
    return [m for config in app_configs for m in config.get_models()]
