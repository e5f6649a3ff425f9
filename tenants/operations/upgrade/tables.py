"""The tables the upgrade copies: every model's table has a rule, or the upgrade refuses."""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.db import models

from tenants.models import Domain, Generation, Tenant, TenantOwnedModel
from tenants.operations.upgrade.errors import UpgradeError


@dataclass(frozen=True)
class Table:
    model: type[models.Model]
    fields: tuple[models.Field, ...]

    @property
    def name(self) -> str:
        return self.model._meta.db_table

    @property
    def columns(self) -> list[str]:
        return [f.column for f in self.fields]

    @property
    def pk(self) -> str:
        return self.model._meta.pk.column

    def index(self, column: str) -> int:
        return self.columns.index(column)

    def as_dict(self, row: tuple) -> dict:
        return dict(zip(self.columns, row, strict=True))


def copied_tables() -> dict[str, Table]:
    """Every table the upgrade copies, by name; a table it has no rule for is an error."""
    User = get_user_model()
    skipped = {ContentType, Permission, Session, Generation}  # made by migrations / not carried
    special = {Tenant, Domain, User, Group, LogEntry}
    through = {
        User.groups.through,
        User.user_permissions.through,
        Group.permissions.through,
    }
    tables = {}
    unknown = []
    for model in apps.get_models(include_auto_created=True):
        if model in skipped or model._meta.proxy or not model._meta.managed:
            continue
        if model in special or model in through or issubclass(model, TenantOwnedModel):
            tables[model._meta.db_table] = Table(model, tuple(model._meta.concrete_fields))
        elif model._meta.app_label in ("django_tenants", "django_tasks_database"):
            continue  # the job queue is not carried over: let the worker drain it first
        else:
            unknown.append(f"{model._meta.db_table} ({model._meta.label})")
    if unknown:
        raise UpgradeError(
            "No rule to upgrade " + ", ".join(unknown) + ": make the model a TenantOwnedModel "
            "or teach tenants.operations.upgrade where its rows go."
        )
    return tables
