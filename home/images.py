"""Images uploaded by site owners (logo, page images): what is accepted, with clear errors."""

from pathlib import PurePosixPath

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from tenants.media import quota_problem

# Pillow format -> extension the stored file gets (whatever the uploaded name said).
FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp"}
MAX_PIXELS = 40_000_000  # width x height; beyond it an image is refused before decoding


class SiteImageField(forms.ImageField):
    """An image checked by its content (Pillow): a known format whatever the file is called,
    at most MEDIA_MAX_UPLOAD_MB, and room for it in the site's quota. Refused files are never
    stored: the form is invalid and nothing is saved."""

    default_error_messages = {
        "too_large": "This file is %(size)s; an image can be at most %(limit)s.",
        "format": "Use a PNG, JPEG, GIF or WebP image (this one is %(format)s).",
        "too_many_pixels": "This image is %(width)s×%(height)s pixels; it can have at most "
        "40 megapixels.",
        "quota": "%(problem)s",
    }

    def to_python(self, data):
        if data in self.empty_values:
            return None
        limit = int(settings.MEDIA_MAX_UPLOAD_MB * 1024 * 1024)
        if data.size > limit:  # before Pillow reads it
            raise self._error(
                "too_large", size=filesizeformat(data.size), limit=filesizeformat(limit)
            )
        upload = super().to_python(data)  # "Upload a valid image..." unless Pillow can read it
        image = upload.image
        if image.format not in FORMATS:
            raise self._error("format", format=image.format or "not an image format we know")
        if image.width * image.height > MAX_PIXELS:
            raise self._error("too_many_pixels", width=image.width, height=image.height)
        problem = quota_problem(upload.size)
        if problem:
            raise self._error("quota", problem=problem)
        upload.name = f"{PurePosixPath(upload.name).stem[:50]}.{FORMATS[image.format]}"
        return upload

    def _error(self, code, **params):
        return forms.ValidationError(self.error_messages[code], code=code, params=params)
