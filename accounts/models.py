from django.conf import settings
from django.db import models

from tenants.models import TenantOwnedModel


class Membership(TenantOwnedModel):
    """Who works on a tenant's site, and as what. Scoped like any tenant-owned data.

    In schema mode the user is the tenant schema's own ``auth_user`` row; in row mode it is the
    shared one. Either way, a membership of tenant A means nothing on tenant B's host.
    """

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        EDITOR = "editor", "Editor"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.EDITOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="accounts_one_membership")
        ]
        ordering = ["user__username"]

    def __str__(self):
        return f"{self.user} ({self.get_role_display()})"


class LogEntryTenant(TenantOwnedModel):
    """The tenant whose admin wrote an admin log entry (row mode, where ``django_admin_log`` is
    one table for every site): "Recent actions" shows the current tenant's entries only.

    Written by every ModelAdmin of the site (``accounts.admin_site.TenantLoggedAdmin``). Not
    needed in schema mode, where each tenant's log is a table in its own schema.
    """

    entry = models.OneToOneField(
        "admin.LogEntry", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )

    class Meta:
        verbose_name = "admin log entry's tenant"
        indexes = [models.Index(fields=["tenant", "entry"])]

    def __str__(self):
        return f"log entry {self.entry_id} of tenant {self.tenant_id}"
