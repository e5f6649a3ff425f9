"""Each tenant's uploads: stored under ``tenants/<tenant id>/``, served on its own host only.

Through Django's storage API (``STORAGES["default"]``: the local filesystem at MEDIA_ROOT, or
any S3-compatible store with ``MEDIA_STORAGE=s3``, ``tenants.media_s3``):

* **names**: ``TenantUploadTo("logos")`` gives ``tenants/<id>/logos/<random>.<ext>``. The prefix
  is the tenant's id, which never changes: a rename (slug, domain, schema) or the row -> schema
  upgrade (ids are kept) keeps every file where it is;
* **serving**: ``serve_media`` answers ``/media/<name>`` only when the name is under the current
  tenant's prefix; any other name is a 404, exactly like a missing file, on another tenant's
  host and on the platform's. Then ``MEDIA_SERVING`` says how the bytes go out: streamed by the
  app, handed to nginx (``X-Accel-Redirect``), or a redirect to a short-lived signed URL;
* **quota**: ``usage()`` is the size of everything under the prefix; ``quota_problem()`` says
  why ``MEDIA_TENANT_QUOTA_MB`` leaves no room for an upload;
* **clean-up**: files replaced, cleared or deleted are removed once the change commits
  (``remove_replaced_files``); a deleted tenant's files go with it (``on_tenant_deleted``).
"""

from __future__ import annotations

import mimetypes
import posixpath
import secrets
import shutil
from pathlib import PurePosixPath
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.utils.deconstruct import deconstructible
from django.views.decorators.http import require_safe

from tenants.runtime.context import current_tenant
from tenants.runtime.scoping import TenantRequired

MB = 1024 * 1024


def tenant_prefix(tenant_id: int) -> str:
    return f"tenants/{int(tenant_id)}/"


@deconstructible
class TenantUploadTo:
    """``upload_to`` of tenant-owned file fields: a random name under the row's tenant's
    prefix, keeping only the (lowercased) extension of the uploaded name."""

    def __init__(self, folder: str):
        self.folder = folder

    def __call__(self, instance, filename: str) -> str:
        tenant_id = getattr(instance, "tenant_id", None)
        if tenant_id is None:
            tenant = current_tenant()
            if tenant is None:
                raise TenantRequired("An upload belongs to a tenant, but none is active.")
            tenant_id = tenant.pk
        extension = PurePosixPath(filename).suffix.lower()[:8]
        return f"{tenant_prefix(tenant_id)}{self.folder}/{secrets.token_urlsafe(12)}{extension}"

    def __eq__(self, other):
        return isinstance(other, TenantUploadTo) and other.folder == self.folder


# --- Usage and quota -----------------------------------------------------------------------------


def _files_under(folder: str):
    """Names of every file under ``folder`` in the default storage (recursively)."""
    try:
        directories, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        yield f"{folder}{name}"
    for directory in directories:
        yield from _files_under(f"{folder}{directory}/")


def tenant_files(tenant_id: int) -> list[str]:
    """Names of every file under the tenant's prefix, sorted (export, removal)."""
    return sorted(_files_under(tenant_prefix(tenant_id)))


def usage(tenant_id: int) -> int:
    """Bytes stored under the tenant's prefix."""
    return sum(default_storage.size(name) for name in _files_under(tenant_prefix(tenant_id)))


def quota_problem(size: int) -> str | None:
    """Why the current tenant cannot store ``size`` more bytes (MEDIA_TENANT_QUOTA_MB), or
    None."""
    quota = int(settings.MEDIA_TENANT_QUOTA_MB * MB)
    tenant = current_tenant()
    if not quota or tenant is None:
        return None
    used = usage(tenant.pk)
    if used + size <= quota:
        return None
    return (
        f"This site's storage is full: {_size(used)} of {_size(quota)} used, and this file "
        f"needs {_size(size)}. Delete images you no longer need, or ask the platform for more "
        "space."
    )


def _size(count: int) -> str:
    return filesizeformat(count).replace("\xa0", " ")


# --- Removing files ------------------------------------------------------------------------------


def delete_on_commit(name: str) -> None:
    """Delete a stored file once the current transaction commits (never if it rolls back)."""
    transaction.on_commit(lambda: default_storage.delete(name))


def remove_replaced_files(model, *fields: str) -> None:
    """Delete the stored file of ``fields`` when a row's file is replaced or cleared, or the row
    is deleted (after the commit)."""

    def remember(sender, instance, raw=False, **kwargs):
        stored = {}
        if not raw and instance.pk is not None:
            stored = sender.objects.filter(pk=instance.pk).values(*fields).first() or {}
        instance._stored_files = stored

    def forget_replaced(sender, instance, raw=False, **kwargs):
        for field, old in getattr(instance, "_stored_files", {}).items():
            if old and old != getattr(instance, field).name:
                delete_on_commit(old)

    def forget_deleted(sender, instance, **kwargs):
        for field in fields:
            if getattr(instance, field).name:
                delete_on_commit(getattr(instance, field).name)

    uid = f"tenants.media:{model._meta.label}"
    pre_save.connect(remember, sender=model, weak=False, dispatch_uid=f"{uid}:pre_save")
    post_save.connect(forget_replaced, sender=model, weak=False, dispatch_uid=f"{uid}:post_save")
    post_delete.connect(forget_deleted, sender=model, weak=False, dispatch_uid=f"{uid}:delete")


def remove_tenant_media(tenant_id: int) -> int:
    """Delete every file under the tenant's prefix; returns how many."""
    prefix = tenant_prefix(tenant_id)
    names = list(_files_under(prefix))
    for name in names:
        default_storage.delete(name)
    if isinstance(default_storage, FileSystemStorage):  # and the empty folders
        shutil.rmtree(default_storage.path(prefix), ignore_errors=True)
    return len(names)


def on_tenant_deleted(tenant_id: int, *, keep: bool) -> str:
    """What happens to a deleted tenant's files, said for the operator: removed once the
    deletion commits, or (``keep``, its schema archived) left where they are, for that schema's
    rows still name them (ids are never reused)."""
    prefix = tenant_prefix(tenant_id)
    if keep:
        return f"kept its uploaded files under {prefix} (its archived schema refers to them)"
    transaction.on_commit(lambda: remove_tenant_media(tenant_id))
    return f"removed its uploaded files ({prefix})"


# --- Serving -------------------------------------------------------------------------------------


@require_safe
def serve_media(request, name: str):
    """``/media/<name>``: the file if it is the current tenant's, else 404."""
    tenant = getattr(request, "tenant", None)
    if (
        tenant is None
        or not name.startswith(tenant_prefix(tenant.pk))
        or posixpath.normpath(name) != name
        or "\\" in name
        or "\x00" in name
        or not default_storage.exists(name)
    ):
        raise Http404("No such file on this site.")
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if settings.MEDIA_SERVING == "x-accel":
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.MEDIA_ACCEL_PREFIX + quote(name)
    elif settings.MEDIA_SERVING == "redirect":
        direct_url = getattr(default_storage, "direct_url", default_storage.url)
        response = HttpResponseRedirect(direct_url(name))
    else:
        response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
