"""The emails a site sends: welcome on sign-up, password reset. Each is a tenant job
(``tenants.jobs``), so the worker renders and sends it in the site's own tenant: links are built
from the tenant's stored primary domain (``Tenant.url()``), never from a request's Host, and the
sender's name is the site's."""

from __future__ import annotations

import logging
import re
from email.utils import formataddr, parseaddr

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.access import may_sign_in
from accounts.tokens import password_reset_token
from home.models import SiteSettings
from tenants.jobs import tenant_task
from tenants.runtime.context import current_tenant

logger = logging.getLogger(__name__)
_NOT_IN_A_NAME = re.compile(r"[\x00-\x1f\x7f<>\"]+")


def site_sender() -> str:
    """``Site Name <DEFAULT_FROM_EMAIL's address>``: the current site's name in front of the
    platform's address (control characters and quotes taken out: it goes into a header)."""
    name = _NOT_IN_A_NAME.sub(" ", SiteSettings.current().display_name).strip()[:70]
    address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or settings.DEFAULT_FROM_EMAIL
    return formataddr((name, address)) if name else address


def send_site_mail(to: str, template: str, context: dict) -> None:
    """Render ``<template>_subject.txt`` and ``<template>.txt`` and send them from the site."""
    tenant = current_tenant()
    context = {
        "site_name": SiteSettings.current().display_name,
        "site_url": tenant.url("/"),
        **context,
    }
    subject = " ".join(render_to_string(f"{template}_subject.txt", context).split())
    body = render_to_string(f"{template}.txt", context)
    EmailMessage(subject, body, site_sender(), [to]).send()


@tenant_task
def send_welcome_email(username: str, email: str) -> None:
    """To a new site's owner: where the site is, its admin, and how to reset the password."""
    tenant = current_tenant()
    send_site_mail(
        email,
        "accounts/email/welcome",
        {
            "username": username,
            "admin_url": tenant.url("/admin/"),
            "reset_url": tenant.url(reverse("password_reset")),
        },
    )


@tenant_task
def send_password_reset_email(user_id: int) -> bool:
    """A password-reset link for a user who may sign in on the job's site; the token is made
    here (never stored in the queue) and is valid on this site only. Returns whether it went."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.email or not may_sign_in(user):
        logger.warning("Password reset not sent: user %s may not sign in here.", user_id)
        return False
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": password_reset_token.make_token(user),
        },
    )
    send_site_mail(
        user.email,
        "accounts/email/password_reset",
        {"username": user.get_username(), "reset_link": current_tenant().url(path)},
    )
    return True
