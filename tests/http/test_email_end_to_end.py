"""Email end to end: a real server (gunicorn) takes the requests, a separate worker process
sends the mail, and a real SMTP server process (aiosmtpd, on a loopback port) receives it."""

import uuid

import pytest
from django.contrib.auth import get_user_model
from django_tasks_db.models import DBTaskResult

from tenants.models import Domain, Tenant
from tenants.runtime.context import tenant_context
from tests.support.mail import RESET_LINK as LINK
from tests.support.mail import smtp_server
from tests.support.mail import text_of as body
from tests.support.members import make_member, remove_sign_up
from tests.support.modes import SCHEMA_MODE
from tests.support.servers import Visitor, start_production_server
from tests.support.worker import run_worker

NEW_PASSWORD = "a brand new passphrase 9"


@pytest.fixture
def site(committed_db, tmp_path):
    """A server and an SMTP server; ``site.deliver()`` runs the worker, which sends the mail."""
    DBTaskResult.objects.all().delete()
    with smtp_server(tmp_path) as smtp:
        server = start_production_server(tmp_path)
        try:
            server.smtp = smtp
            server.deliver = lambda: run_worker(EMAIL_URL=smtp.url, TENANCY_URL_PORT=server.port)
            yield server
        finally:
            server.stop()
            DBTaskResult.objects.all().delete()


@pytest.fixture
def people(committed_db):
    """acme: ``a`` (an address global's ``b`` uses too) and ``c`` (an address of its own); an
    extra, non-primary domain of acme. Deactivated and removed afterwards."""
    demo = {t.slug: t for t in Tenant.objects.all()}
    tag = uuid.uuid4().hex[:8]
    shared, own = f"shared-{tag}@example.test", f"only-acme-{tag}@example.test"
    made = {
        "a": (demo["acme"], make_member(demo["acme"], f"reset-a-{tag}")),
        "b": (demo["global"], make_member(demo["global"], f"reset-b-{tag}")),
        "c": (demo["acme"], make_member(demo["acme"], f"reset-c-{tag}")),
    }
    for key, address in (("a", shared), ("b", shared), ("c", own)):
        tenant, user = made[key]
        with tenant_context(tenant):
            get_user_model().objects.filter(pk=user.pk).update(email=address)
    alias = Domain.objects.create(
        domain=f"www.acme-{tag}.test", tenant=demo["acme"], is_primary=False
    )
    yield {"shared": shared, "own": own, "alias": alias.domain, "demo": demo, **made}
    alias.delete()
    for tenant, user in made.values():
        with tenant_context(tenant):
            get_user_model().objects.filter(pk=user.pk).update(is_active=False)


def ask_reset(site, host, email, headers=None):
    answer = Visitor(site).submit(host, "/password-reset/", {"email": email}, headers)
    assert (answer.status, answer.headers["Location"]) == (302, "/password-reset/sent/")


def test_password_reset_links_point_to_the_sites_stored_domain_and_work_there_only(site, people):
    acme_origin = f"http://acme.localhost:{site.port}"
    # A forged X-Forwarded-Host on acme's host; acme's non-primary domain; another tenant's
    # host asked for acme's member; a forged Host (unknown: the platform's site answers).
    ask_reset(site, "acme.localhost", people["shared"], {"X-Forwarded-Host": "evil.example"})
    ask_reset(site, people["alias"], people["own"])
    ask_reset(site, "global.localhost", people["own"])
    ask_reset(site, "evil.example", people["own"], {"X-Forwarded-Host": "acme.localhost"})
    site.deliver()

    messages = site.smtp.messages()
    assert not [m for m in messages if "evil" in body(m) or "evil" in m["From"]]
    # The shared address: only acme's member (a), not global's (b), through acme's domain.
    (to_a,) = site.smtp.to(people["shared"])
    assert people["a"][1].username in body(to_a) and people["b"][1].username not in body(to_a)
    assert to_a["From"] == "Acme Corporation <noreply@localhost>"
    assert to_a["Subject"] == "Reset your password on Acme Corporation"
    link_a = LINK.search(body(to_a)).group(0)
    assert link_a.startswith(f"{acme_origin}/reset/")
    # c's address: once from acme's alias domain (link on the primary one), never from
    # global's host; from the platform's host only in row mode, where c is a platform account
    # (link on the platform's domain), never on the forged Host.
    to_c = site.smtp.to(people["own"])
    links_c = sorted(LINK.search(body(m)).group(0) for m in to_c)
    platform = [] if SCHEMA_MODE else [f"http://localhost:{site.port}/reset/"]
    assert [link.rsplit("/reset/", 1)[0] + "/reset/" for link in links_c] == sorted(
        [f"{acme_origin}/reset/", *platform]
    )
    link_c = next(link for link in links_c if link.startswith(acme_origin))

    # acme's link on global's host (and on the platform's): refused, nothing changed.
    for host in ("global.localhost", "localhost"):
        answer = Visitor(site).request(host, link_c.removeprefix(acme_origin))
        assert answer.status == 200 and "This link does not work" in answer.text, host

    # On acme's host it works once: a new password, then a log-in with it.
    person = Visitor(site)
    answer = person.request("acme.localhost", link_a.removeprefix(acme_origin))
    assert answer.status == 302 and answer.headers["Location"].endswith("/set-password/")
    passwords = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    answer = person.submit("acme.localhost", answer.headers["Location"], passwords)
    assert (answer.status, answer.headers["Location"]) == (302, "/reset/done/")
    assert Visitor(site).login("acme.localhost", people["a"][1].username, NEW_PASSWORD)
    answer = person.request("acme.localhost", link_a.removeprefix(acme_origin))
    assert "This link does not work" in answer.text  # used once
    # global's b, who shares the address, still has the old password.
    with tenant_context(people["demo"]["global"]):
        assert not get_user_model().objects.get(pk=people["b"][1].pk).check_password(NEW_PASSWORD)


@pytest.fixture
def signed_up(committed_db):
    made = []
    yield made.append
    for username in made:
        remove_sign_up(username)


def test_sign_up_sends_a_welcome_email_from_the_new_site(site, signed_up):
    username = f"welcome{uuid.uuid4().hex[:8]}"
    signed_up(username)
    answer = Visitor(site).submit(
        "localhost",
        "/register/",
        {
            "username": username,
            "email": f"{username}@example.test",
            "password": "a long and unusual passphrase 42",
            "site_name": "Welcome Bakery",
        },
    )
    assert answer.status == 302
    site.deliver()

    (welcome,) = site.smtp.to(f"{username}@example.test")
    assert welcome["Subject"] == "Your site Welcome Bakery is live"
    assert welcome["From"] == "Welcome Bakery <noreply@localhost>"
    text = body(welcome)
    origin = f"http://{username}.localhost:{site.port}"
    for url in (f"{origin}/", f"{origin}/admin/", f"{origin}/password-reset/"):
        assert f"    {url}\n" in text
    assert len(site.smtp.messages()) == 1
