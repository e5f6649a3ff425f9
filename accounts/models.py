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
