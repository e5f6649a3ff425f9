"""Restoring a tenant archive: checked first, written in one transaction, verified before it
commits. Any failure leaves nothing: no tenant row, no schema, no rows, no files."""

from __future__ import annotations

import hashlib
import posixpath
import tempfile
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.management.color import no_style
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction

from tenants import cells, media
from tenants.cellconfig import alias_for_cell
from tenants.conf import schema_mode, site_domain
from tenants.models import Tenant, TenantOwnedModel
from tenants.operations.lifecycle import validation_message
from tenants.operations.transfer import archive
from tenants.operations.transfer.export import migration_state
from tenants.operations.transfer.tables import (
    ArchiveError,
    alias_for,
    carried_tables,
    decode_rows,
    label,
    read_rows,
)
from tenants.operations.upgrade.tables import Table
from tenants.operations.upgrade.verify import checksum
from tenants.runtime.context import no_tenant, tenant_context

BATCH = 500  # rows per INSERT


@dataclass
class Imported:
    tenant: Tenant
    tables: dict[str, dict]  # label -> rows and checksum, as verified in the target
    files: int
    users_created: list[str] = field(default_factory=list)
    users_reused: list[str] = field(default_factory=list)
    users_renamed: dict[str, str] = field(default_factory=dict)
    # label -> {archive id: id in the target}: where each row went (row mode gives every row a
    # new id; schema mode keeps them). What a delta copy after a move's bulk copy compares by.
    ids: dict[str, dict] = field(default_factory=dict)


def import_tenant(
    path,
    *,
    slug: str | None = None,
    domain: str | None = None,
    name: str | None = None,
    using: str | None = None,
    cell: str | None = None,
    keep_identity: bool = False,
    rename_users: bool = False,
) -> Imported:
    """Restore the archive at ``path`` as a new tenant (``slug``, default the archive's; primary
    ``domain``, default ``<slug>.<TENANT_BASE_DOMAIN>``), its data written to alias ``using``.

    With cells (TENANCY_CELLS) and no ``using``: the new tenant goes to ``cell``, else to the
    cell the placement policy picks (as ``tenants create``), its data written there (row mode:
    accounts and memberships on the control database); an unknown or unreachable cell is an
    ``ArchiveError`` before anything is written.

    ``keep_identity``: the tenant of the archive (same id and slug) already exists in the
    control database and only its data is written to ``using`` (a move between databases).

    Accounts (row mode: platform accounts; schema mode: the platform account of the owner): an
    existing account of the same username is reused only if its e-mail and password hash are
    the archive's; any other is refused, or with ``rename_users`` the archive's account is
    created as ``<username>-<slug>``. Raises ``ArchiveError``, with nothing left behind.
    """
    using, placed = _target_alias(using, cell, keep_identity)
    if schema_mode() and using != DEFAULT_DB_ALIAS and not keep_identity and placed is None:
        raise ArchiveError(
            "Schema mode: a new tenant's schema is made in the default database; import into "
            "another database with keep_identity, into a schema made there first."
        )
    with archive.ArchiveReader(path) as reader:
        tables = carried_tables()
        check_archive(reader, tables)
        restorer = _Restorer(reader, tables, using, rename_users)
        try:
            with transaction.atomic(), transaction.atomic(using=using):
                restorer.tenant = _target_tenant(
                    reader.manifest, slug, domain, name, keep_identity, using, placed
                )
                restorer.run(keep_identity)
        except (ValueError, TypeError) as error:  # a value the database cannot take
            restorer.remove_files(new_tenant=not keep_identity)
            raise ArchiveError(
                f"The archive holds a value that cannot be stored: {error}"
            ) from None
        except BaseException:
            restorer.remove_files(new_tenant=not keep_identity)
            raise
        return restorer.result()


def check_archive(reader: archive.ArchiveReader, tables: list[Table]):
    """Every table and file of the archive is the one its manifest describes (rows, checksums,
    sizes, sha256), read once before anything is written."""
    listed = reader.manifest.get("tables", {})
    expected = {label(t): t.columns for t in tables}
    if {k: v.get("columns") for k, v in listed.items()} != expected:
        raise ArchiveError(
            "The archive's tables are not this platform's: made by another version of the code "
            f"(it has {sorted(listed)}, this platform carries {sorted(expected)})."
        )
    for table in tables:
        rows = decode_rows(table, reader.lines(archive.table_member(label(table))))
        _compare(label(table), listed[label(table)], rows, "the archive")
    for relative, info in reader.manifest.get("media", {}).items():
        reader.check_file(archive.media_member(archive.safe_relative(relative)), **info)


def _compare(name: str, expected: dict, rows, where: str) -> dict:
    count = 0

    def counted():
        nonlocal count
        for row in rows:
            count += 1
            yield row

    digest = checksum(counted())
    if count != expected["rows"] or digest != expected["checksum"]:
        what = "row count" if count != expected["rows"] else "checksum"
        raise ArchiveError(
            f"Verification failed: {name} in {where} has {count} rows, the export had "
            f"{expected['rows']} ({what} differs). Nothing was imported."
        )
    return {"rows": count, "checksum": digest}


def _target_alias(using, cell, keep_identity) -> tuple[str, str | None]:
    """The alias the tenant's data is written to, and the cell a new tenant is placed in
    (None: ``using`` as given, or no cells)."""
    if using is not None or keep_identity:
        if cell:
            raise ArchiveError("Give a cell or a database alias to import into, not both.")
        return using or DEFAULT_DB_ALIAS, None
    if not cell and not cells.enabled():
        return DEFAULT_DB_ALIAS, None
    try:
        placed = cells.place(cell)
    except (cells.UnknownCell, cells.NoCellAvailable) as error:
        raise ArchiveError(f"{error} Nothing was imported.") from None
    return alias_for_cell(placed), placed


def _target_tenant(manifest, slug, domain, name, keep_identity, using, placed) -> Tenant:
    source = manifest["source"]
    if keep_identity:
        with no_tenant():
            tenant = Tenant.objects.filter(pk=source["id"], slug=source["slug"]).first()
        if tenant is None:
            raise ArchiveError(f"No tenant {source['slug']} (id {source['id']}) to restore into.")
        if cells.enabled():  # a move: its queries here go to the cell being written
            names = {alias: name for name, alias in cells.configured().items()}
            tenant.cell = names.get(using, "")
        return tenant
    from tenants.provisioning.services import create_tenant

    slug = slug or source["slug"]
    try:
        made = create_tenant(
            name=name or source["name"],
            slug=slug,
            domain=domain or site_domain(slug),
            cell=placed,
        )
    except (cells.UnknownCell, cells.NoCellAvailable) as error:  # gone down since placed
        raise ArchiveError(f"{error} Nothing was imported.") from None
    except ValidationError as error:
        raise ArchiveError(f"Cannot import as {slug!r}: {validation_message(error)}") from None
    return made.tenant


class _Restorer:
    """One import: maps archive ids to target ids table by table, and back for verifying."""

    def __init__(self, reader: archive.ArchiveReader, tables: list[Table], using, rename_users):
        self.reader, self.tables, self.using = reader, tables, using
        self.manifest = reader.manifest
        self.rename_users = rename_users
        self.tenant: Tenant | None = None
        self.maps: dict[str, dict] = {label(t): {} for t in tables}  # archive id -> target id
        self.written: list[str] = []  # files stored so far (removed again on failure)
        self.verified: dict[str, dict] = {}
        self.created, self.reused, self.renamed = [], [], {}
        self.archive_users: dict[int, dict] = {}  # archive id -> account (users.place_users)
        self.kept_ids: set[int] = set()  # accounts reused or renamed: compared on who they are

    def alias(self, model) -> str:
        """Where ``model``'s rows are written and read back (``tables.alias_for``)."""
        return alias_for(model, self.using)

    @property
    def remap(self) -> bool:
        """Row mode: ids are numbered across tenants, so every row gets a new one. Schema mode:
        the tenant's schema is new, ids are kept."""
        return not schema_mode()

    def run(self, keep_identity: bool):
        source = self.manifest["source"]
        self.old_prefix = source["media_prefix"]
        self.new_prefix = media.tenant_prefix(self.tenant.pk)
        if keep_identity:
            self._check_empty()
        with tenant_context(self.tenant):
            here = migration_state(self.tables, self.using)
            if here != self.manifest["migrations"]:
                raise ArchiveError(_migrations_differ(self.manifest["migrations"], here))
            for table in self.tables:
                self._write_table(table)
            if schema_mode():
                self._reset_sequences()
        if not keep_identity:
            self._set_owner()
        self._write_media(keep_identity)
        with tenant_context(self.tenant):
            for table in self.tables:
                rows = self._read_back(table)
                where = f"the imported tenant {self.tenant.slug}"
                expected = self.manifest["tables"][label(table)]
                self.verified[label(table)] = _compare(label(table), expected, rows, where)

    def result(self) -> Imported:
        return Imported(
            self.tenant,
            self.verified,
            len(self.written),
            self.created,
            self.reused,
            self.renamed,
            self.maps,
        )

    # --- rows ---

    def _check_empty(self):
        """``keep_identity``: the tenant has no data in the target yet (schema mode: its
        schema there exists, made empty by the caller)."""
        if schema_mode():
            from tenants import postgres

            with no_tenant(), connections[self.using].cursor() as cursor:
                exists = postgres.schema_exists(cursor, self.tenant.schema_name)
            if not exists:
                raise ArchiveError(
                    f"Make the empty schema {self.tenant.schema_name} in {self.using} first."
                )
        with tenant_context(self.tenant):
            for table in self.tables[1:]:
                if table.model.objects.using(self.alias(table.model)).exists():
                    raise ArchiveError(
                        f"{self.tenant.slug} already has {label(table)} rows in {self.using}."
                    )

    def _rows(self, table: Table):
        return decode_rows(table, self.reader.lines(archive.table_member(label(table))))

    def _write_table(self, table: Table):
        if table.model is get_user_model():
            self._write_users(table)
            return
        pk = table.index(table.pk)
        batch = []
        for row in self._rows(table):
            batch.append((row[pk], self._to_target(table, row)))
            if len(batch) >= BATCH:
                self._insert(table, batch)
                batch = []
        if batch:
            self._insert(table, batch)

    def _insert(self, table: Table, batch: list[tuple]):
        """Rows in one INSERT, as the archive has them: plain SQL, since Django's inserts stamp
        ``auto_now`` columns with the time of the import. Row mode: new ids, returned in the
        order of the rows (as Django's own bulk inserts rely on)."""
        connection = connections[self.alias(table.model)]
        qn = connection.ops.quote_name
        fields = [f for f in table.fields if f.is_relation or not (f.primary_key and self.remap)]
        row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
        statement = (
            f"INSERT INTO {qn(table.name)} ({', '.join(qn(f.column) for f in fields)}) "
            f"VALUES {', '.join([row_sql] * len(batch))}"
        )
        params = [
            f.get_db_prep_save(values[f.attname], connection) for _, values in batch for f in fields
        ]
        returning = table.model._meta.pk not in fields
        if returning:
            statement += f" RETURNING {qn(table.pk)}"
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            new_ids = [row[0] for row in cursor.fetchall()] if returning else None
        pk = table.model._meta.pk.attname
        ids = self.maps[label(table)]
        for n, (old_id, values) in enumerate(batch):
            ids[old_id] = new_ids[n] if returning else values[pk]

    def _to_target(self, table: Table, row: tuple) -> dict:
        values = {}
        for f, value in zip(table.fields, row, strict=True):
            if value is not None and f.is_relation:  # (a one-to-one primary key too)
                value = self._target_id(table, f, value)
            elif value is not None and f.primary_key:
                value = None if self.remap else value
            elif value and isinstance(f, models.FileField):
                value = self._file_name(value, self.old_prefix, self.new_prefix)
            values[f.attname] = value
        return values

    def _target_id(self, table: Table, f, value):
        if f.name == "tenant" and issubclass(table.model, TenantOwnedModel):
            if value != self.manifest["source"]["id"]:
                raise ArchiveError(f"A row of {label(table)} belongs to another tenant.")
            return self.tenant.pk
        target = self.maps[f.related_model._meta.label_lower].get(value)
        if target is None:
            raise ArchiveError(
                f"A row of {label(table)} points at {f.related_model._meta.label_lower} "
                f"{value}, which the archive does not hold."
            )
        return target

    def _file_name(self, name: str, old: str, new: str) -> str:
        if not name.startswith(old):
            raise ArchiveError(f"The archive names a file outside the tenant's folder: {name!r}.")
        return new + name[len(old) :]

    def _reset_sequences(self):
        connection = connections[self.using]
        statements = connection.ops.sequence_reset_sql(no_style(), [t.model for t in self.tables])
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    # --- accounts ---

    def _write_users(self, table: Table):
        from tenants.operations.transfer.users import place_users

        place_users(self, table, list(self._rows(table)))

    def _set_owner(self):
        from tenants.operations.transfer.users import platform_owner

        owner = platform_owner(self)
        if owner is not None:
            with no_tenant():
                Tenant.objects.filter(pk=self.tenant.pk).update(owner=owner)
            self.tenant.owner = owner

    # --- files ---

    def _write_media(self, keep_identity: bool):
        for relative, info in self.manifest["media"].items():
            name = self.new_prefix + archive.safe_relative(relative)
            member = archive.media_member(relative)
            with tempfile.SpooledTemporaryFile(max_size=archive.CHUNK * 8) as copy:
                self.reader.copy_to(member, copy)
                copy.seek(0)
                if default_storage.exists(name):
                    if (
                        keep_identity
                        and _sha256(default_storage.open(name, "rb")) == info["sha256"]
                    ):
                        continue  # the same storage serves both databases: already there
                    raise ArchiveError(f"A file {name} is already stored; nothing was imported.")
                saved = default_storage.save(name, File(copy, name=posixpath.basename(name)))
            self.written.append(saved)
            if saved != name or default_storage.size(saved) != info["size"]:
                raise ArchiveError(f"Storing {name} failed (stored as {saved}).")

    def remove_files(self, *, new_tenant: bool):
        """After a failure: the files stored, and (a new tenant's id may be given again) its
        whole folder."""
        for written in self.written:
            default_storage.delete(written)
        if new_tenant and self.tenant is not None and self.tenant.pk is not None:
            media.remove_tenant_media(self.tenant.pk)

    # --- verifying ---

    def _read_back(self, table: Table):
        """The target's rows of ``table`` in the archive's terms (archive ids and file names),
        in archive id order."""
        inverse = {name: {v: k for k, v in ids.items()} for name, ids in self.maps.items()}
        if table.model is get_user_model():
            from tenants.operations.transfer.users import users_read_back

            return users_read_back(self, table, inverse)
        rows = read_rows(table, table.model.objects.using(self.alias(table.model)).all())
        return (self._to_archive(table, row, inverse) for row in rows)

    def _to_archive(self, table: Table, row: tuple, inverse: dict) -> tuple:
        values = []
        for f, value in zip(table.fields, row, strict=True):
            if value is not None and f.name == "tenant":
                value = self.manifest["source"]["id"] if value == self.tenant.pk else None
            elif value is not None and f.is_relation:
                value = inverse[f.related_model._meta.label_lower].get(value)
            elif value is not None and f.primary_key:
                value = inverse[label(table)].get(value)
            elif value and isinstance(f, models.FileField) and value.startswith(self.new_prefix):
                value = self.old_prefix + value[len(self.new_prefix) :]
            values.append(value)
        return tuple(values)


def _sha256(stream) -> str:
    digest = hashlib.sha256()
    with stream:
        while chunk := stream.read(archive.CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _migrations_differ(archived: list[str], here: list[str]) -> str:
    only_archive = sorted(set(archived) - set(here))
    only_here = sorted(set(here) - set(archived))
    return (
        "The archive was made at another migration state than this platform's "
        f"(only in the archive: {', '.join(only_archive) or '-'}; only here: "
        f"{', '.join(only_here) or '-'}). Import it on a platform running the same version, "
        "or migrate that one first."
    )
