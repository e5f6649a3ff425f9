"""Moving a tenant between cells in row mode (PostgreSQL with row-level security): the rows of
its cell tables, by tenant id, on the cells' owner connections (docs/cells.md, "Moving a
tenant"). The lock, the switch, the pause hook and the result are ``tenants.operations.move``'s.

1. **Bulk copy, unfrozen**: ``COPY`` of the tenant's rows of every cell table from the source
   cell to the target cell, without their ids (each cell numbers its rows from its own
   sequences), in one target transaction.
2. **Freeze** (``tenants.seal.freeze``: only this tenant's writers wait). Rows are compared by
   content (md5 of every column but the id) as multisets: on the target the rows whose content
   the source lacks (or has fewer times) are deleted, and the source's rows of those contents
   copied again. Then count and digest of every table must be equal, the target commits.
3. **Seal** (``tenants.seal.seal``) in the source transaction, which commits; then the shared
   switch of ``Tenant.cell``.
4. **Remove** the sealed old rows after ``TENANCY_RESOLVER_REVALIDATE_SECONDS`` + 1 s (as the
   owner, ``tenancy.removing``); the seal mark stays, so a stale process's write there is
   refused rather than kept in a copy no one reads.

Reruns read the servers: a seal on the tenant's cell naming the target means the copy is
complete (switch); rows of the tenant on the target, which it is not mapped to, are an
unfinished copy or a sealed old copy (deleted, with its mark, before a new copy).
"""

from __future__ import annotations

import time
from collections import Counter

import psycopg
from django.apps import apps
from psycopg import sql

from tenants import cells, postgres, seal
from tenants.cellconfig import CONTROL, alias_for_cell, owner_alias


def cell_tables() -> list[tuple[str, list[str]]]:
    """``(table, columns but the id)`` of every tenant-owned model whose rows live in a cell."""
    from tenants.models import TenantOwnedModel

    found = []
    for model in apps.get_models():
        meta = model._meta
        if not issubclass(model, TenantOwnedModel) or meta.proxy or not meta.managed:
            continue
        if not cells.in_cell(model):
            continue
        for f in meta.concrete_fields:
            if f.is_relation and f.name != "tenant":
                raise RuntimeError(f"{meta.label}.{f.name}: a row-mode move cannot remap it")
        columns = sorted(f.column for f in meta.concrete_fields if not f.primary_key)
        found.append((meta.db_table, columns))
    return sorted(found)


def connect(cell: str, *, autocommit: bool = True) -> psycopg.Connection:
    return postgres.connect(owner_alias(alias_for_cell(cell)), autocommit=autocommit)


def _cols(columns):
    return sql.SQL(", ").join(map(sql.Identifier, columns))


def _digest_sql(columns):
    return sql.SQL("md5(ROW({})::text)").format(_cols(columns))


def copy_rows(src, dst, table, columns, tenant_id, digests=None) -> int:
    """``COPY`` the tenant's rows of ``table`` (all, or those whose content digest is in
    ``digests``) from ``src`` to ``dst``, new ids there."""
    where = sql.SQL("tenant_id = %s")
    params: list = [tenant_id]
    if digests is not None:
        where = sql.SQL("{} AND {} = ANY(%s)").format(where, _digest_sql(columns))
        params.append(list(digests))
    out = sql.SQL("COPY (SELECT {} FROM {} WHERE {}) TO STDOUT").format(
        _cols(columns), sql.Identifier(table), where
    )
    into = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), _cols(columns))
    copied = 0
    with src.cursor().copy(out, params) as reader, dst.cursor().copy(into) as writer:
        for block in reader:
            writer.write(block)
            copied += bytes(block).count(b"\n")
    return copied


def _digests(conn, table, columns, tenant_id) -> Counter:
    query = sql.SQL("SELECT {} FROM {} WHERE tenant_id = %s").format(
        _digest_sql(columns), sql.Identifier(table)
    )
    return Counter(d for (d,) in conn.execute(query, [tenant_id]).fetchall())


def sync_table(src, dst, table, columns, tenant_id) -> int:
    """Make the target's rows of the tenant the same multiset as the source's."""
    here, there = _digests(src, table, columns, tenant_id), _digests(dst, table, columns, tenant_id)
    differing = {d for d in here.keys() | there.keys() if here[d] != there[d]}
    if not differing:
        return 0
    dst.execute(
        sql.SQL("DELETE FROM {} WHERE tenant_id = %s AND {} = ANY(%s)").format(
            sql.Identifier(table), _digest_sql(columns)
        ),
        [tenant_id, list(differing)],
    )
    return copy_rows(src, dst, table, columns, tenant_id, differing)


def table_digest(conn, table, columns, tenant_id) -> tuple[int, str]:
    query = sql.SQL(
        "SELECT count(*), coalesce(md5(string_agg(d, '' ORDER BY d)), '') FROM "
        "(SELECT {} AS d FROM {} WHERE tenant_id = %s) rows"
    ).format(_digest_sql(columns), sql.Identifier(table))
    count, digest = conn.execute(query, [tenant_id]).fetchone()
    return count, digest


def has_rows(conn, tenant_id) -> bool:
    return any(table_digest(conn, t, c, tenant_id)[0] for t, c in cell_tables())


def delete_rows(conn, tenant_id) -> None:
    """Delete the tenant's rows of every cell table (in ``conn``'s transaction), past its seal."""
    seal.allow_removal(conn, tenant_id)
    for table, _columns in cell_tables():
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE tenant_id = %s").format(sql.Identifier(table)),
            [tenant_id],
        )


# --- The steps (called by tenants.operations.move) ---------------------------------------------


def sealed_for(cell: str, tenant) -> str | None:
    with connect(cell) as conn:
        return seal.sealed(conn, tenant.pk)


def recover(tenant, target: str, step) -> str:
    """Rows of the tenant on the target (not its cell): an unfinished copy, or a sealed old
    copy with its mark; both go before a new copy. A sealed source is resumed by the caller."""
    current = tenant.cell or CONTROL
    if current == target:
        return "already on the target cell"
    if sealed_for(current, tenant) == target:
        return ""
    with connect(target, autocommit=False) as conn:
        leftover = has_rows(conn, tenant.pk)
        mark = seal.sealed(conn, tenant.pk)
        if not leftover and mark is None:
            return ""
        step("drop-leftover")
        delete_rows(conn, tenant.pk)
        seal.unseal(conn, tenant.pk)
        conn.commit()
    return f"removed an unfinished or old copy on {target}"


def bulk_copy(tenant, source: str, target: str, step) -> dict:
    step("export")
    copied = {}
    with connect(source) as src, connect(target, autocommit=False) as dst:
        step("import")
        for table, columns in cell_tables():
            copied[table] = {"rows": copy_rows(src, dst, table, columns, tenant.pk)}
        dst.commit()
    step("copied")
    return copied


def freeze_sync_and_seal(tenant, source: str, target: str, result, step) -> None:
    with connect(source, autocommit=False) as src, connect(target, autocommit=False) as dst:
        step("freeze")
        result.freeze_started = time.perf_counter()
        seal.freeze(src, tenant.pk)
        step("sync")
        for table, columns in cell_tables():
            result.delta_rows += sync_table(src, dst, table, columns, tenant.pk)
        step("verify")
        for table, columns in cell_tables():
            here = table_digest(src, table, columns, tenant.pk)
            there = table_digest(dst, table, columns, tenant.pk)
            if here != there:
                from tenants.operations.move import MoveError

                raise MoveError(
                    f"Verification failed: {table} has {here[0]} rows on the source and "
                    f"{there[0]} on the target (or their contents differ). Nothing was switched."
                )
            result.tables[table] = here
        dst.commit()
        step("seal")
        seal.seal(src, tenant.pk, target)
        src.commit()


def drop_unsealed_copy(tenant, source: str, target: str) -> None:
    try:
        if sealed_for(source, tenant) is None:
            remove_old_copy(target, tenant)
    except Exception:  # the cell went away: the rerun cleans up
        pass


REMOVED = "removed the old rows on {}"


def old_copy_on(cell: str, tenant) -> bool:
    """The tenant's rows are on ``cell`` under its seal: a sealed old copy (the mark stays)."""
    with connect(cell) as conn:
        return seal.sealed(conn, tenant.pk) is not None and has_rows(conn, tenant.pk)


def remove_old_copy(cell: str, tenant) -> None:
    with connect(cell, autocommit=False) as conn:
        delete_rows(conn, tenant.pk)
        conn.commit()
