"""The archive file: one zip, written and read member by member (never whole in memory).

::

    manifest.json                 format, versions, mode, source tenant, per table rows+checksum,
                                  per file size+sha256 (written last: it knows the totals)
    tables/<app>.<model>.jsonl    one row per line, a JSON list of the columns the manifest names
    media/<name under the tenant's prefix>

Zip rather than tar: members can be written without knowing their size first, and read in any
order (the manifest first); each member's CRC-32 catches damaged bytes, and a truncated file has
no central directory, so both are refused before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

from tenants.operations.transfer.tables import ArchiveError

FORMAT = "tenantsite-tenant-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHUNK = 1024 * 1024


def table_member(label: str) -> str:
    return f"tables/{label}.jsonl"


def media_member(relative: str) -> str:
    return f"media/{relative}"


def safe_relative(name: str) -> str:
    """``name`` if it is a plain relative path (no ``..``, no absolute or odd names)."""
    if (
        not name
        or posixpath.normpath(name) != name
        or name.startswith(("/", "../"))
        or name == ".."
        or "\\" in name
        or "\x00" in name
    ):
        raise ArchiveError(f"The archive names a file {name!r} outside the tenant's folder.")
    return name


class ArchiveWriter:
    """Writes to a temporary file beside ``path``, renamed into place by ``close()``: a failed
    export leaves no half-written archive."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        folder = self.path.parent if str(self.path.parent) else Path(".")
        if not folder.is_dir():
            raise ArchiveError(f"No folder {folder} to write {self.path.name} in.")
        try:
            handle, self._temporary = tempfile.mkstemp(prefix=".export-", dir=folder)
        except OSError as error:
            raise ArchiveError(f"Cannot write in {folder}: {error.strerror}.") from None
        os.close(handle)
        self.zip = zipfile.ZipFile(self._temporary, "w", zipfile.ZIP_DEFLATED, allowZip64=True)

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is None:
            self.zip.close()
            os.replace(self._temporary, self.path)
        else:
            self.zip.close()
            os.unlink(self._temporary)

    def member(self, name: str):
        """A writable stream for member ``name``."""
        info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        return self.zip.open(info, "w", force_zip64=True)

    def copy_file(self, name: str, source) -> tuple[int, str]:
        """``source`` (a binary file) into member ``name``; returns its size and sha256."""
        digest, size = hashlib.sha256(), 0
        with self.member(name) as out:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        return size, digest.hexdigest()

    def write_manifest(self, manifest: dict):
        self.zip.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))


class ArchiveReader:
    """An archive opened for reading; every damage is an ``ArchiveError`` naming the file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise ArchiveError(f"No archive {self.path}.")
        try:
            self.zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError) as error:
            raise ArchiveError(
                f"{self.path} is not a tenant archive, or it is damaged or truncated ({error})."
            ) from None
        self.manifest = self._read_manifest()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.zip.close()

    def _read_manifest(self) -> dict:
        try:
            manifest = json.loads(self.zip.read(MANIFEST))
        except KeyError:
            raise ArchiveError(f"{self.path} has no {MANIFEST}: not a tenant archive.") from None
        except (zipfile.BadZipFile, ValueError, OSError) as error:
            raise ArchiveError(f"{self.path}: its manifest is damaged ({error}).") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ArchiveError(f"{self.path} is not a tenant archive (no {FORMAT} manifest).")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ArchiveError(
                f"{self.path} is format version {manifest.get('format_version')}; this platform "
                f"reads version {FORMAT_VERSION}."
            )
        problem = _manifest_problem(manifest)
        if problem:
            raise ArchiveError(f"{self.path}: its manifest is damaged ({problem}).")
        return manifest

    def lines(self, name: str) -> Iterator[bytes]:
        """The lines of member ``name``, streamed; damage (a bad CRC) is an ArchiveError."""
        try:
            with self.zip.open(name) as member:
                yield from member
        except KeyError:
            raise ArchiveError(f"The archive is damaged: {name} is missing.") from None
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise ArchiveError(f"The archive is damaged: {name} ({error}).") from None

    def check_file(self, name: str, size: int, sha256: str):
        """Member ``name`` has ``size`` bytes with this sha256 (read without keeping it)."""
        digest, count = hashlib.sha256(), 0
        for chunk in self._chunks(name):
            digest.update(chunk)
            count += len(chunk)
        if count != size or digest.hexdigest() != sha256:
            raise ArchiveError(f"The archive is damaged: {name} is not the file it exported.")

    def copy_to(self, name: str, out):
        for chunk in self._chunks(name):
            out.write(chunk)

    def _chunks(self, name: str) -> Iterator[bytes]:
        try:
            with self.zip.open(name) as member:
                while chunk := member.read(CHUNK):
                    yield chunk
        except KeyError:
            raise ArchiveError(f"The archive is damaged: {name} is missing.") from None
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise ArchiveError(f"The archive is damaged: {name} ({error}).") from None


def _manifest_problem(manifest: dict) -> str | None:
    """What is missing or malformed in a manifest of this format version, or None."""
    source = manifest.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("id"), int):
        return "no source tenant"
    if not all(isinstance(source.get(k), str) for k in ("slug", "name", "media_prefix")):
        return "the source tenant has no slug, name or media prefix"
    if source["media_prefix"] != f"tenants/{source['id']}/":
        return "the media prefix is not the source tenant's"
    if not isinstance(manifest.get("migrations"), list):
        return "no migration state"
    owner = manifest.get("owner")
    if owner is not None and not (
        isinstance(owner, dict) and isinstance(owner.get("username"), str)
    ):
        return "the owner has no username"
    tables, files = manifest.get("tables"), manifest.get("media")
    if not isinstance(tables, dict) or not isinstance(files, dict):
        return "no tables or media"
    for name, info in tables.items():
        if not (
            isinstance(info, dict)
            and isinstance(info.get("rows"), int)
            and isinstance(info.get("checksum"), str)
        ):
            return f"table {name} has no row count or checksum"
    for name, info in files.items():
        if not (
            isinstance(info, dict)
            and isinstance(info.get("size"), int)
            and isinstance(info.get("sha256"), str)
            and set(info) == {"size", "sha256"}
        ):
            return f"file {name} has no size or sha256"
    return None
