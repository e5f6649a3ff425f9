"""Password-reset tokens that are valid on the site they were made for only."""

from django.contrib.auth.tokens import PasswordResetTokenGenerator

from tenants.runtime.context import current_tenant


class SitePasswordResetTokenGenerator(PasswordResetTokenGenerator):
    """Django's tokens (one use: they change with the password and the last log-in), with the
    current tenant in the hash: a link made for tenant A's site is invalid on B's, even for a
    user who may sign in on both (row mode) or whose id means someone else there (schema mode).
    """

    key_salt = "accounts.tokens.SitePasswordResetTokenGenerator"

    def _make_hash_value(self, user, timestamp):
        tenant = current_tenant()
        site = f"{tenant.pk}:{tenant.schema_name}" if tenant is not None else "-"
        return f"{super()._make_hash_value(user, timestamp)}|{site}"


password_reset_token = SitePasswordResetTokenGenerator()
