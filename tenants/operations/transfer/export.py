"""Writing one tenant's archive: its accounts, its rows, its files, and a manifest."""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from importlib import metadata
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.db import connections, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from tenants import cells, media
from tenants.conf import schema_mode
from tenants.models import Tenant
from tenants.operations.transfer import archive
from tenants.operations.transfer.tables import (
    USER_FIELDS,
    ArchiveError,
    alias_for,
    carried_tables,
    encode_row,
    label,
    read_rows,
)
from tenants.operations.upgrade.tables import Table
from tenants.operations.upgrade.verify import checksum
from tenants.runtime.context import no_tenant, tenant_context


def export_tenant(tenant: Tenant, path: str | Path, *, using: str | None = None) -> dict:
    """Write ``tenant``'s archive to ``path`` (its data read from database alias ``using``,
    default its cell's); returns the manifest. The file appears whole or not at all.

    On PostgreSQL the rows are read in one repeatable-read transaction: a consistent copy even
    while the site is written to (on SQLite, stop writes for that). Files are read after the
    rows (stop uploads, or deactivate the tenant, for a copy where both agree to the second).
    """
    if tenant.is_default:
        raise ArchiveError("The platform's own site holds the platform's data; it is not exported.")
    using = using or cells.alias_of(tenant)
    tables = carried_tables()
    aliases = {alias_for(t.model, using) for t in tables}
    with archive.ArchiveWriter(path) as out:
        with tenant_context(tenant), ExitStack() as snapshots:
            for alias in sorted(aliases):
                snapshots.enter_context(_snapshot(alias))
            summary = {label(t): _write_table(out, t, _rows_of(t, tenant, using)) for t in tables}
            migrations = migration_state(tables, using)
        files = _write_media(out, tenant)
        out.write_manifest(
            {
                "format": archive.FORMAT,
                "format_version": archive.FORMAT_VERSION,
                "platform_version": _platform_version(),
                "migrations": migrations,
                "mode": "schema" if schema_mode() else "row",
                "exported_at": timezone.now().isoformat(),
                "source": _source(tenant),
                "owner": _owner(tenant),
                "tables": summary,
                "media": files,
            }
        )
    return summary


@contextmanager
def _snapshot(using: str):
    """PostgreSQL: one read-only repeatable-read transaction, a consistent copy that blocks no
    one. SQLite: none (its transactions here take the write lock, which would stop every
    site's writes for the export's length); each table is read at once."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def _rows_of(table: Table, tenant: Tenant, using: str):
    """The tenant's rows of ``table`` (the current tenant's, by the row filter and schema)."""
    model = table.model
    if model is not get_user_model():
        return read_rows(table, model.objects.using(alias_for(model, using)).all())
    users = model._default_manager.using(alias_for(model, using))
    if not schema_mode():  # platform accounts: its members and its owner
        from accounts.models import Membership

        members = Membership.objects.using(alias_for(Membership, using))
        ids = set(members.values_list("user_id", flat=True))
        ids.add(tenant.owner_id)
        users = users.filter(pk__in=ids - {None})
    return read_rows(table, users.all())  # schema mode: the schema's own accounts


def _write_table(out: archive.ArchiveWriter, table: Table, rows) -> dict:
    count = 0

    def written():
        nonlocal count
        with out.member(archive.table_member(label(table))) as stream:
            for row in rows:
                stream.write(encode_row(row))
                count += 1
                yield row

    digest = checksum(written())
    return {"columns": table.columns, "rows": count, "checksum": digest}


def _write_media(out: archive.ArchiveWriter, tenant: Tenant) -> dict:
    prefix = media.tenant_prefix(tenant.pk)
    files = {}
    for name in media.tenant_files(tenant.pk):
        relative = name[len(prefix) :]
        with default_storage.open(name, "rb") as source:
            size, sha256 = out.copy_file(archive.media_member(relative), source)
        files[relative] = {"size": size, "sha256": sha256}
    return files


def migration_state(tables: list[Table], using: str) -> list[str]:
    """The applied migrations of the carried tables' apps, as seen by the current tenant."""
    app_labels = {t.model._meta.app_label for t in tables}
    applied = MigrationRecorder(connections[using]).applied_migrations()
    return sorted(f"{app}.{name}" for app, name in applied if app in app_labels)


def _source(tenant: Tenant) -> dict:
    with no_tenant():
        domains = list(
            tenant.domains.order_by("-is_primary", "domain").values_list("domain", flat=True)
        )
    return {
        "id": tenant.pk,
        "slug": tenant.slug,
        "name": tenant.name,
        "schema": tenant.schema_name if schema_mode() else None,
        "domains": domains,
        "media_prefix": media.tenant_prefix(tenant.pk),
    }


def _owner(tenant: Tenant) -> dict | None:
    """The owner's platform account (schema mode: the public one, not the site's copy)."""
    with no_tenant():
        owner = get_user_model()._default_manager.filter(pk=tenant.owner_id).first()
    if owner is None:
        return None
    return {name: _plain(getattr(owner, name)) for name in USER_FIELDS}


def _plain(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def _platform_version() -> str:
    try:
        return metadata.version("tenantsite")
    except metadata.PackageNotFoundError:
        return "unknown"
