from django.db import models
from django.urls import reverse

from tenants.models import TenantOwnedModel


class PageContent(TenantOwnedModel):
    """A block of a tenant's site: shown on the home page and on a page of its own."""

    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    ordering = models.PositiveIntegerField(default=0, help_text="Lower numbers come first.")
    published = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["ordering", "id"]
        verbose_name = "page"
        indexes = [models.Index(fields=["tenant", "published", "ordering"])]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("home:page", args=[self.pk])
