import functools
import re

from django.conf import settings
from django.core.cache import cache
from django.core.validators import RegexValidator
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.templatetags.static import static
from django.urls import reverse
from django.utils.safestring import mark_safe

from home.colours import contrast_ratio, readable_on
from tenants.media import TenantUploadTo, remove_replaced_files
from tenants.models import Tenant, TenantOwnedModel
from tenants.runtime.context import current_tenant, tenant_context

DEFAULT_BRAND_COLOUR = "#1f5fbf"
_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


class PageContent(TenantOwnedModel):
    """A block of a tenant's site: shown on the home page and on a page of its own."""

    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    ordering = models.PositiveIntegerField(default=0, help_text="Lower numbers come first.")
    published = models.BooleanField(default=True)
    image = models.ImageField(
        upload_to=TenantUploadTo("pages"),
        blank=True,
        db_default="",  # rows written without it (older code during a deploy, raw SQL) get none
        help_text="Shown at the top of the page: PNG, JPEG, GIF or WebP.",
    )
    image_alt = models.CharField(
        "image description",
        max_length=200,
        blank=True,
        db_default="",
        help_text="What the image shows, for people who cannot see it.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["ordering", "id"]
        verbose_name = "page"
        indexes = [models.Index(fields=["tenant", "published", "ordering"])]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("home:page", args=[self.pk])


class SiteSettings(TenantOwnedModel):
    """A tenant's branding, edited by its owner in the tenant's own admin.

    One row per tenant at most; a tenant without one shows the defaults (its name, the default
    colour). It is tenant-owned data like the pages, so in schema mode it lives in the tenant's
    schema, which is all a tenant host's ``search_path`` sees.
    """

    CACHE_KEY = "home:branding"  # the cache's key function adds the tenant (tenants.runtime.cache)
    CACHE_SECONDS = 300

    site_name = models.CharField(
        max_length=100,
        blank=True,
        help_text="Shown in the header and titles. Empty: the tenant's name.",
    )
    tagline = models.CharField(max_length=200, blank=True)
    brand_colour = models.CharField(
        "brand colour",
        max_length=7,
        default=DEFAULT_BRAND_COLOUR,
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}\Z", "Enter a colour as #rrggbb.")],
        help_text="Header and button colour. Text on it is black or white, whichever reads better.",
    )
    logo = models.ImageField(
        upload_to=TenantUploadTo("logos"),
        blank=True,
        db_default="",
        help_text="Shown beside the site name: PNG, JPEG, GIF or WebP.",
    )
    logo_url = models.URLField(
        "logo URL",
        blank=True,
        help_text="Or an image hosted elsewhere (https://…), shown if no logo is uploaded.",
    )

    class Meta:
        verbose_name = "site settings"
        verbose_name_plural = "site settings"
        constraints = [models.UniqueConstraint(fields=["tenant"], name="home_one_sitesettings")]

    def __str__(self):
        return "Site settings"

    def save(self, *args, **kwargs):
        self.brand_colour = self.brand_colour.lower()
        super().save(*args, **kwargs)

    @classmethod
    def current(cls) -> "SiteSettings":
        """The current tenant's settings (cached per tenant), or unsaved defaults if none."""
        settings = cache.get(cls.CACHE_KEY)
        if settings is None:
            settings = cls.objects.first() or cls()
            cache.set(cls.CACHE_KEY, settings, cls.CACHE_SECONDS)
        return settings

    @classmethod
    def cached(cls) -> "SiteSettings | None":
        """The current tenant's settings if the cache holds them, else None: never a query
        (the 503 page, shown when the database is unavailable)."""
        return cache.get(cls.CACHE_KEY)

    # --- What templates use ----------------------------------------------------------------

    @property
    def logo_src(self) -> str:
        """The uploaded logo's URL, else the logo URL, else ''."""
        return self.logo.url if self.logo else self.logo_url

    @property
    def display_name(self) -> str:
        """The site's name: its own setting, else PLATFORM_NAME on the platform's site, else
        the tenant's name."""
        if self.site_name:
            return self.site_name
        tenant = current_tenant()
        if tenant is None:
            return ""
        return settings.PLATFORM_NAME if tenant.is_default else tenant.name

    @property
    def css_variables(self) -> str:
        """The brand's colours as the stylesheet's custom properties (base.html): ``#rrggbb``
        values only, so safe in a ``<style>``; one lookup for the page instead of three."""
        return mark_safe(
            f"--brand: {self.colour}; --on-brand: {self.text_colour}; --link: {self.link_colour};"
        )

    @property
    def icon_url(self) -> str:
        """The site's icon (favicon): its logo (uploaded, else linked), else the platform's."""
        return self.logo_src or platform_icon_url()

    @property
    def colour(self) -> str:
        """The brand colour, or the default if the stored value is not ``#rrggbb`` (it goes into
        a stylesheet, so nothing else may pass)."""
        return (
            self.brand_colour
            if _HEX_COLOUR.fullmatch(self.brand_colour or "")
            else DEFAULT_BRAND_COLOUR
        )

    @property
    def text_colour(self) -> str:
        """Black or white, whichever contrasts more with the brand colour."""
        return readable_on(self.colour)

    @property
    def link_colour(self) -> str:
        """The brand colour for links on white if it is readable there (WCAG AA), else ink."""
        colour = self.colour
        return colour if contrast_ratio(colour, "#ffffff") >= 4.5 else "#1f2933"


@functools.cache
def platform_icon_url() -> str:
    """The platform's icon, once per process (under its hashed name once collected)."""
    return static("home/favicon.svg")


remove_replaced_files(PageContent, "image")
remove_replaced_files(SiteSettings, "logo")


@receiver([post_save, post_delete], sender=SiteSettings)
def forget_cached_branding(sender, instance, **kwargs):
    """Drop the row's tenant's cached branding, now and again once the change is committed."""
    tenant = current_tenant()
    if tenant is None or tenant.pk != instance.tenant_id:  # platform code, tenant given by hand
        tenant = Tenant.objects.filter(pk=instance.tenant_id).first()
        if tenant is None:  # the tenant itself is being deleted: nothing will read its cache
            return

    def forget():
        with tenant_context(tenant):
            cache.delete(SiteSettings.CACHE_KEY)

    forget()
    transaction.on_commit(forget)
