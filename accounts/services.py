"""Self-service sign-up: a platform account and its live site, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.emails import send_welcome_email
from tenants.provisioning.services import (
    Provisioned,
    SiteNameUnavailable,
    provision_tenant_for_user,
    slug_unavailable,
)
from tenants.runtime.context import tenant_context
from tenants.validators import slug_for_username, username_slug_problem

USERNAME_TAKEN = "A user with that username already exists."


@dataclass(frozen=True)
class SignUp:
    user: object
    provisioned: Provisioned


class SignUpRefused(Exception):
    """Nothing was created; ``errors`` maps form fields ("__all__" for none) to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(m for messages in errors.values() for m in messages))
        self.errors = errors


def username_problem(username: str) -> str | None:
    """Why ``username`` cannot sign up (its site name is invalid, reserved or taken), or None."""
    problem = username_slug_problem(username)
    if problem:
        return problem
    if get_user_model().objects.filter(username__iexact=username).exists():
        return USERNAME_TAKEN
    problem = slug_unavailable(slug_for_username(username))
    if problem:
        return f"{problem} Choose another username: it names your site."
    return None


def sign_up(*, username: str, email: str, password: str, site_name: str = "") -> SignUp:
    """Create the user and their site, all or nothing, and queue the welcome email. The
    password is hashed exactly once.

    The site is provisioned by the user's ``post_save`` signal (``accounts.signals``), or here if
    auto-provisioning is turned off. Raises ``SignUpRefused`` if the name is taken meanwhile
    (concurrent sign-ups) or cannot name a site.
    """
    User = get_user_model()
    # Hash before the transaction: the slow part holds no locks.
    user = User(username=username, email=User.objects.normalize_email(email))
    user.password = make_password(password)
    user.site_name = site_name
    try:
        with transaction.atomic():
            user.save()
            provisioned = getattr(user, "provisioned", None)
            if provisioned is None:  # auto-provisioning is off
                provisioned = provision_tenant_for_user(user, name=site_name)
            # Sent by the worker once all of this is committed; never for a sign-up rolled back.
            with tenant_context(provisioned.tenant):
                send_welcome_email.enqueue(user.get_username(), user.email)
    except SiteNameUnavailable as refused:
        raise SignUpRefused({"username": [refused.reason]}) from refused
    except IntegrityError as conflict:
        # Another sign-up took the username or site name between our checks and our insert.
        raise SignUpRefused(
            {"username": [username_problem(username) or "This username was just taken."]}
        ) from conflict
    except ValidationError as invalid:
        message = username_problem(username) or invalid.messages[0]
        raise SignUpRefused({"username": [message]}) from invalid
    return SignUp(user, provisioned)
