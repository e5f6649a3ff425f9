"""What a tenant archive carries, table by table, and its rows in one portable form.

The same tables whatever the mode, so an archive made in one mode can be restored in the other:

* ``auth.user``: the accounts that sign in on the site (row mode: its members and its owner,
  platform accounts; schema mode: its schema's own user table), with the columns that make an
  account (never staff or superuser rights);
* every tenant-owned model (``TenantOwnedModel``), except the admin log's tenant marks.

Values are the upgrade's canonical ones (``tenants.operations.upgrade.source.normalise``), and
each table's checksum is the upgrade's (``verify.checksum``): one scheme for both.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import uuid
from collections.abc import Iterable, Iterator

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, models
from django.utils.dateparse import parse_date, parse_datetime, parse_time

from tenants import cells
from tenants.conf import schema_mode
from tenants.models import TenantOwnedModel
from tenants.operations.lifecycle import OperationError
from tenants.operations.upgrade.source import normalise, normalised
from tenants.operations.upgrade.tables import Table


class ArchiveError(OperationError):
    """The archive cannot be made or restored as asked; nothing was left behind."""


# The account columns carried: who signs in, with which password hash. Not last_login, and
# never is_staff/is_superuser: an archive cannot grant rights on the platform.
USER_FIELDS = (
    "id",
    "password",
    "username",
    "first_name",
    "last_name",
    "email",
    "is_active",
    "date_joined",
)
# Tenant-owned models left out, and why (said in docs/operations.md).
NOT_CARRIED = {"accounts.logentrytenant": "the admin log (Recent actions) is not carried"}


def user_table() -> Table:
    User = get_user_model()
    return Table(User, tuple(User._meta.get_field(name) for name in USER_FIELDS))


def carried_tables() -> list[Table]:
    """The users, then every carried tenant-owned model, each after the models it points at."""
    User = get_user_model()
    owned = [
        m
        for m in apps.get_models()
        if issubclass(m, TenantOwnedModel)
        and not m._meta.proxy
        and m._meta.label_lower not in NOT_CARRIED
    ]
    for model in owned:
        for field in model._meta.concrete_fields:
            if field.is_relation and field.name != "tenant":
                target = field.related_model
                if target is not User and target not in owned or target is model:
                    raise ArchiveError(
                        f"{model._meta.label}.{field.name} points at {target._meta.label}; "
                        "tenants.operations.transfer does not know how to carry that reference."
                    )
    ordered: list[type[models.Model]] = []
    while len(ordered) < len(owned):  # each model after those it points at
        ready = [
            model
            for model in owned
            if model not in ordered
            and all(
                f.related_model in ordered or f.related_model is User or f.name == "tenant"
                for f in model._meta.concrete_fields
                if f.is_relation
            )
        ]
        if not ready:
            cycle = ", ".join(m._meta.label for m in owned if m not in ordered)
            raise ArchiveError(f"{cycle} point at each other; no order to restore them in.")
        ordered += ready
    return [user_table()] + [Table(m, tuple(m._meta.concrete_fields)) for m in ordered]


def alias_for(model, using: str) -> str:
    """The alias holding ``model``'s rows of a tenant whose data is at alias ``using``: that
    one, except in row mode with cells, where accounts and the tables pointing at them
    (memberships) stay on the control database while the rest is in the cell (``in_cell``)."""
    if schema_mode() or using not in cells.configured().values() or cells.in_cell(model):
        return using
    return DEFAULT_DB_ALIAS


def label(table: Table) -> str:
    return table.model._meta.label_lower


def read_rows(table: Table, queryset) -> Iterator[tuple]:
    """``queryset``'s rows of ``table``'s columns in primary key order, normalised."""
    attnames = [f.attname for f in table.fields]
    rows = queryset.order_by(table.model._meta.pk.attname).values_list(*attnames)
    for row in rows.iterator(chunk_size=2000):
        yield normalised(table, [row])[0]


# --- One row as a line of JSON, and back ---------------------------------------------------------


def encode_row(row: tuple) -> bytes:
    return json.dumps(list(row), default=_encode, separators=(",", ":")).encode() + b"\n"


def _encode(value):
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (bytes, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    raise TypeError(f"cannot archive a {type(value).__name__}")


def decode_rows(table: Table, lines: Iterable[bytes]) -> Iterator[tuple]:
    """Rows of ``table`` from its archive member's lines, in the canonical form."""
    for number, line in enumerate(lines, start=1):
        try:
            values = json.loads(line)
            if not isinstance(values, list) or len(values) != len(table.fields):
                raise ValueError(f"expected {len(table.fields)} values")
            yield tuple(
                normalise(f, _decode(f, v)) for f, v in zip(table.fields, values, strict=True)
            )
        except (ValueError, TypeError, AttributeError) as error:
            raise ArchiveError(
                f"The archive is damaged: line {number} of {label(table)} is not a row ({error})."
            ) from None


# What JSON gives for each kind of column; anything else is a damaged or forged archive.
_JSON_TYPES = {
    "AutoField": int,
    "BigAutoField": int,
    "SmallAutoField": int,
    "IntegerField": int,
    "BigIntegerField": int,
    "SmallIntegerField": int,
    "PositiveIntegerField": int,
    "PositiveBigIntegerField": int,
    "PositiveSmallIntegerField": int,
    "BooleanField": bool,
    "CharField": str,
    "TextField": str,
    "EmailField": str,
    "URLField": str,
    "SlugField": str,
    "FileField": str,
    "ImageField": str,
}


def _decode(field: models.Field, value):
    if value is None:
        return None
    if isinstance(field, models.ForeignKey):
        return _decode(field.target_field, value)
    internal = field.get_internal_type()
    expected = _JSON_TYPES.get(internal)
    if expected is not None and (
        not isinstance(value, expected) or (expected is int and isinstance(value, bool))
    ):
        raise ValueError(f"{field.name} is {value!r}, not a {expected.__name__}")
    parse = {"DateTimeField": parse_datetime, "DateField": parse_date, "TimeField": parse_time}
    if internal in parse:
        parsed = parse[internal](value)
        if parsed is None:
            raise ValueError(f"{value!r} is not a {internal}")
        return parsed
    if internal == "BinaryField":
        return base64.b64decode(value)
    if internal == "JSONField":
        return value  # already a JSON value: no second decoding
    return value
