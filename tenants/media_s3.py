"""MEDIA_STORAGE=s3: tenants' uploads in any S3-compatible store (django-storages; install with
``pip install -e '.[s3]'``). Objects are private; their page URL is still ``/media/<name>`` on
the tenant's host (``tenants.media.serve_media`` checks the tenant), which redirects to a signed
URL valid for MEDIA_S3_URL_SECONDS."""

from django.conf import settings
from storages.backends.s3 import S3Storage


class TenantS3Storage(S3Storage):
    def url(self, name, *args, **kwargs):
        """The URL pages use: on the tenant's own host, checked before any hand-off."""
        return settings.MEDIA_URL + name

    def direct_url(self, name):
        """The object store's signed URL (what ``serve_media`` redirects to)."""
        return super().url(name)
