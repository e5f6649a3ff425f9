import re

from django.core.cache import cache
from django.db import models
from django.urls import reverse

from home.colours import contrast_ratio, readable_on


class Page(models.Model):
    """home.PageContent's fields without the tenant column."""

    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    ordering = models.PositiveIntegerField(default=0)
    published = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["ordering", "id"]
        indexes = [models.Index(fields=["published", "ordering"])]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("home:page", args=[self.pk])


DEFAULT_BRAND_COLOUR = "#1f5fbf"
_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


class Branding(models.Model):
    """home.SiteSettings' fields and template properties without the tenant: the site's one
    row of branding, cached the same way (a plain cache key instead of a tenant's)."""

    CACHE_KEY = "home:branding"
    CACHE_SECONDS = 300

    site_name = models.CharField(max_length=100, blank=True)
    tagline = models.CharField(max_length=200, blank=True)
    brand_colour = models.CharField(max_length=7, default=DEFAULT_BRAND_COLOUR)
    logo_url = models.URLField(blank=True)

    fallback_name = ""  # the site's own name, shown when site_name is empty

    def __str__(self):
        return "Branding"

    @classmethod
    def current(cls, fallback_name: str = "") -> "Branding":
        branding = cache.get(cls.CACHE_KEY)
        if branding is None:
            branding = cls.objects.first() or cls()
            cache.set(cls.CACHE_KEY, branding, cls.CACHE_SECONDS)
        branding.fallback_name = fallback_name
        return branding

    @property
    def display_name(self) -> str:
        return self.site_name or self.fallback_name

    @property
    def colour(self) -> str:
        return (
            self.brand_colour
            if _HEX_COLOUR.fullmatch(self.brand_colour or "")
            else DEFAULT_BRAND_COLOUR
        )

    @property
    def text_colour(self) -> str:
        return readable_on(self.colour)

    @property
    def link_colour(self) -> str:
        colour = self.colour
        return colour if contrast_ratio(colour, "#ffffff") >= 4.5 else "#1f2933"
