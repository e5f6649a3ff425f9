"""`tenants create --owner NEW --owner-email E` leaves an owner who can sign in to the new site's
admin by following the command's own output, in both modes (issue 12, item 2).

The command runs in another process, on a terminal (a pseudo-terminal: it asks for the
password) or not (a script: $TENANT_OWNER_PASSWORD, or no password and advice that works as
written); the log-in goes through the site's real admin log-in form.
"""

import json
import os
import pty
import re
import select
import sys
import time
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tenants.models import Tenant
from tenants.runtime.context import no_tenant, scopes_disabled
from tests.support.members import admin_login
from tests.support.modes import SCHEMA_MODE
from tests.support.servers import REPO, manage, on_test_database

PASSWORD = "a long owner passphrase 7"


def _env(**extra):
    return on_test_database(**extra)


def on_terminal(args, answers, timeout=120):
    """Run ``manage.py *args`` on a pseudo-terminal, typing each answer at each prompt (a
    line ending in ': '); returns (exit status, everything it printed)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal is its controlling terminal (getpass reads it)
        os.chdir(REPO)
        os.execve(sys.executable, [sys.executable, "manage.py", *args], {**os.environ, **_env()})
    answers, output, answered_at = list(answers), b"", 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child is gone
                break
            if not chunk:
                break
            output += chunk
        if answers and output[answered_at:].rstrip(b" ").endswith(b":"):
            os.write(fd, answers.pop(0).encode() + b"\n")
            answered_at = len(output)
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


@pytest.fixture(autouse=True)
def _real_hashers(settings):
    """The commands hash as the site does (PBKDF2); this process must check such hashes."""
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]


@pytest.fixture
def site(django_db_setup, django_db_blocker):
    """A fresh slug and owner name; the tenant and the owner are removed afterwards."""
    name = f"own{uuid.uuid4().hex[:8]}"
    yield name, f"{name}-owner"
    drop = ["--drop-schema"] if SCHEMA_MODE else []
    manage("tenants", "delete", name, "--yes", *drop, env=_env(), check=False)
    # Platform clean-up: the delete collector looks for the owner's memberships in every tenant.
    with django_db_blocker.unblock(), no_tenant(), scopes_disabled():
        get_user_model().objects.filter(username=f"{name}-owner").delete()


def _create(slug, owner, *extra):
    return ["tenants", "create", "--name", f"Site {slug}", "--slug", slug, "--owner", owner]


def _signs_in(slug, username, password, django_db_blocker):
    """Whether ``username`` gets into ``slug``'s admin with ``password`` (and not acme's)."""
    with django_db_blocker.unblock():
        client = Client(HTTP_HOST=f"{slug}.localhost")
        signed_in = admin_login(client, username, password).status_code == 302
        signed_in = signed_in and client.get("/admin/").status_code == 200
        elsewhere = Client(HTTP_HOST="acme.localhost")
        assert admin_login(elsewhere, username, password).status_code == 200  # refused there
    return signed_in


def _accounts(slug):
    shown = manage("tenants", "show", slug, "--json", env=_env())
    return {a["username"]: a for a in json.loads(shown.stdout)["accounts"]}


def test_a_script_gives_the_password_in_the_environment(site, django_db_blocker):
    slug, owner = site
    done = manage(
        *_create(slug, owner),
        "--owner-email",
        "o@example.com",
        env=_env(TENANT_OWNER_PASSWORD=PASSWORD),
    )
    assert f"{owner} signs in at http://{slug}.localhost/admin/ with their password" in done.stdout
    assert _signs_in(slug, owner, PASSWORD, django_db_blocker)
    account = _accounts(slug)[owner]
    assert account["role"] == "owner" and account["owner"]
    assert account["platform_account"]["password"]
    if SCHEMA_MODE:  # the site's own copy has the password too
        assert account["site_account"]["password"]
    else:
        assert account["site_account"] is None


def test_on_a_terminal_the_command_asks_for_it(site, django_db_blocker):
    slug, owner = site
    status, output = on_terminal(
        [*_create(slug, owner), "--owner-email", "o@example.com"],
        ["first try", "does not match", "123", "123", PASSWORD, PASSWORD],
    )
    assert status == 0, output
    assert "do not match" in output and "too common" in output  # asked again each time
    assert f"{owner} signs in at" in output
    assert _signs_in(slug, owner, PASSWORD, django_db_blocker)


def test_without_a_password_the_advice_works_as_written(site, django_db_blocker):
    slug, owner = site
    done = manage(*_create(slug, owner), "--owner-email", "o@example.com", env=_env())
    advice = re.search(r"set it with 'manage\.py ([^']+)'", done.stdout)
    assert advice, done.stdout
    account = _accounts(slug)[owner]
    assert not account["platform_account"]["password"]
    assert not _signs_in(slug, owner, "", django_db_blocker)
    status, output = on_terminal(advice.group(1).split(), [PASSWORD, PASSWORD])
    assert status == 0, output
    assert _signs_in(slug, owner, PASSWORD, django_db_blocker)


def test_a_refused_password_creates_nothing(site, django_db_blocker):
    slug, owner = site
    done = manage(
        *_create(slug, owner),
        "--owner-email",
        "o@example.com",
        env=_env(TENANT_OWNER_PASSWORD="123"),
        check=False,
    )
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1 and "TENANT_OWNER_PASSWORD" in done.stderr
    with django_db_blocker.unblock(), no_tenant():
        assert not Tenant.objects.filter(slug=slug).exists()
        assert not get_user_model().objects.filter(username=owner).exists()


@pytest.mark.django_db
def test_tenants_show_says_which_accounts_exist_where(tenants):
    """A member made on the site only: in schema mode an account of the site's own, with no
    platform account; in row mode the platform account is the member."""
    from io import StringIO

    from django.core.management import call_command

    from accounts.models import Membership
    from tests.support.members import make_member

    make_member(tenants["acme"], "acme-editor", Membership.Role.EDITOR)
    out = StringIO()
    call_command("tenants", "show", "acme", "--json", stdout=out)
    account = {a["username"]: a for a in json.loads(out.getvalue())["accounts"]}["acme-editor"]
    assert account["role"] == "editor" and not account["owner"]
    if SCHEMA_MODE:
        assert account["platform_account"] is None
        assert account["site_account"] == {"password": True, "active": True}
    else:
        assert account["platform_account"] == {"password": True, "active": True}
    out = StringIO()
    call_command("tenants", "show", "global", "--json", stdout=out)
    assert "acme-editor" not in out.getvalue()  # another tenant's member is not listed
