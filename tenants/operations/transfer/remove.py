"""Deleting one tenant's data from one database, its tenant row kept: the last step of a move
(export from A, import into B with ``keep_identity``, verified, then this on A)."""

from __future__ import annotations

from django.db import connections, transaction

from tenants import media, postgres
from tenants.conf import schema_mode
from tenants.models import Tenant
from tenants.operations.transfer.tables import ArchiveError, carried_tables
from tenants.runtime.context import no_tenant, tenant_context


def remove_tenant_data(tenant: Tenant, *, using: str = "default", files: bool = False) -> str:
    """Delete ``tenant``'s data from alias ``using``: schema mode its schema, row mode its rows
    of every tenant-owned table (and the admin log entries marked with it). Its tenant row,
    domains and platform accounts stay. Files are shared by every database and stay, unless
    ``files`` (removed once the deletion commits). Returns what was done."""
    if tenant.is_default:
        raise ArchiveError("The platform's own site's data is the platform's; it is not removed.")
    connection = connections[using]
    if schema_mode():
        with no_tenant(), transaction.atomic(using=using), connection.cursor() as cursor:
            cursor.execute(postgres.drop_schema_sql(tenant.schema_name, if_exists=True))
        done = f"dropped schema {tenant.schema_name} ({using})"
    else:
        # Raw deletes: no signals, so no file is deleted with a row (files are shared).
        with tenant_context(tenant), transaction.atomic(using=using), connection.cursor() as c:
            rows = _delete_rows(c, connection, tenant.pk)
        done = f"deleted {rows} rows of {tenant.slug} ({using})"
    if files:
        done += "; " + media.on_tenant_deleted(tenant.pk, keep=False)
    return done


def _delete_rows(cursor, connection, tenant_id: int) -> int:
    from django.contrib.admin.models import LogEntry

    from accounts.models import LogEntryTenant

    qn = connection.ops.quote_name
    marks = qn(LogEntryTenant._meta.db_table)
    cursor.execute(f"SELECT entry_id FROM {marks} WHERE tenant_id = %s", [tenant_id])
    entries = [row[0] for row in cursor.fetchall()]
    cursor.execute(f"DELETE FROM {marks} WHERE tenant_id = %s", [tenant_id])
    deleted = cursor.rowcount
    log = qn(LogEntry._meta.db_table)
    for start in range(0, len(entries), 500):
        chunk = entries[start : start + 500]
        cursor.execute(f"DELETE FROM {log} WHERE id IN ({', '.join(['%s'] * len(chunk))})", chunk)
    for table in reversed(carried_tables()[1:]):
        cursor.execute(f"DELETE FROM {qn(table.name)} WHERE {qn('tenant_id')} = %s", [tenant_id])
        deleted += cursor.rowcount
    return deleted
