"""Password reset on every site (tenants and the platform): Django's views, scoped to the site.

* who can ask: the form only finds users who may sign in on the current site (its members; any
  platform account on the platform's site), so a reset for another tenant's user sends nothing;
  the page says the same either way (no account discovery);
* the email goes through a tenant job (``accounts.emails.send_password_reset_email``), whose
  link is built from the site's stored primary domain, never from the request's Host;
* the link works on that site only: the token carries the tenant (``accounts.tokens``) and the
  confirm view only accepts users who may sign in on the current site.
"""

from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm

from accounts.access import is_platform_site, may_sign_in
from accounts.emails import send_password_reset_email
from accounts.tokens import password_reset_token


class SitePasswordResetForm(PasswordResetForm):
    def get_users(self, email):
        return (user for user in super().get_users(email) if may_sign_in(user))

    def save(self, *args, **kwargs):
        """Queue one email per matching user of this site (sent after the commit)."""
        for user in self.get_users(self.cleaned_data["email"]):
            send_password_reset_email.enqueue(user.pk)


class LoginLinkMixin:
    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["login_url"] = "/login/" if is_platform_site() else "/admin/login/"
        return context


class PasswordResetView(LoginLinkMixin, auth_views.PasswordResetView):
    form_class = SitePasswordResetForm
    token_generator = password_reset_token


class PasswordResetDoneView(LoginLinkMixin, auth_views.PasswordResetDoneView):
    pass


class PasswordResetConfirmView(LoginLinkMixin, auth_views.PasswordResetConfirmView):
    token_generator = password_reset_token

    def get_user(self, uidb64):
        user = super().get_user(uidb64)
        return user if user is not None and may_sign_in(user) else None


class PasswordResetCompleteView(LoginLinkMixin, auth_views.PasswordResetCompleteView):
    pass
