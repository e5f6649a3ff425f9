from django.db import models
from django.urls import reverse


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
