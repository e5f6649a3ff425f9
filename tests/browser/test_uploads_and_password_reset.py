"""A site owner uploads a logo, then forgets their password and resets it by email: a real
browser, server, worker process (as ``make run`` starts one) and SMTP server process."""

import io
import re
import time

import pytest
from PIL import Image
from playwright.sync_api import expect

from home.models import SiteSettings
from tenants import media
from tenants.models import Tenant
from tenants.runtime.context import tenant_context
from tests.support.browser import DESKTOP, PHONE
from tests.support.mail import RESET_LINK, smtp_server, text_of
from tests.support.worker import start_worker

pytestmark = pytest.mark.browser
NEW_PASSWORD = "my new and memorable passphrase 7"


@pytest.fixture
def mail_and_worker(server, tmp_path):
    """An SMTP server process and a long-running worker sending to it."""
    with smtp_server(tmp_path) as smtp:
        worker = start_worker(
            tmp_path / "worker.log", EMAIL_URL=smtp.url, TENANCY_URL_PORT=server.port
        )
        try:
            yield smtp
        finally:
            worker.terminate()
            worker.wait(timeout=10)


@pytest.fixture
def acme(db):
    """Acme, with its branding and uploads removed afterwards (the database is shared)."""
    tenant = Tenant.objects.get(slug="acme")
    yield tenant
    with tenant_context(tenant):
        SiteSettings.objects.all().delete()
    media.remove_tenant_media(tenant.pk)


def wait_for_mail(smtp, address, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = smtp.to(address)
        if messages:
            return messages
        time.sleep(0.25)
    raise AssertionError(f"no mail to {address} within {timeout} s")


def test_owner_uploads_a_logo_then_resets_a_forgotten_password(
    server, page, screenshot, acme, member_of, mail_and_worker, tmp_path
):
    owner = member_of(acme)
    logo = tmp_path / "logo.png"
    logo.write_bytes(_png())
    fake = tmp_path / "logo-not-really.png"
    fake.write_bytes(b"%PDF-1.4 this is not an image")

    # Log in to acme's admin and open the branding.
    page.goto(server.url("acme.localhost", "/admin/"))
    page.get_by_label("Username").fill(owner.username)
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Log in").click()
    page.goto(server.url("acme.localhost", "/admin/home/sitesettings/"))

    # A file that is not an image, named .png: a clear error, nothing saved.
    page.locator("input#id_logo").set_input_files(str(fake))
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".errorlist")).to_contain_text("Upload a valid image")
    screenshot(page, "upload-refused")
    assert media.usage(acme.pk) == 0

    # A real image: saved, shown in the admin's header and on the site.
    page.locator("input#id_logo").set_input_files(str(logo))
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("successfully")
    page.goto(server.url("acme.localhost"))
    header_logo = page.locator(".site-header img.logo")
    src = header_logo.get_attribute("src")
    assert re.fullmatch(rf"/media/tenants/{acme.pk}/logos/[\w-]+\.png", src)
    assert header_logo.evaluate("img => img.complete && img.naturalWidth === 16")
    screenshot(page, "tenant-home-uploaded-logo")
    page.set_viewport_size(PHONE)
    screenshot(page, "tenant-home-uploaded-logo-phone")
    page.set_viewport_size(DESKTOP)
    # The same path on another tenant's host and on the platform's: not found.
    for host in ("global.localhost", "localhost"):
        assert page.goto(server.url(host, src)).status == 404, host
    assert page.goto(server.url("acme.localhost", src)).status == 200

    # Log out, then "forgotten your password?" from the admin's log-in page.
    page.goto(server.url("acme.localhost"))
    page.get_by_role("button", name="Log out").click()
    page.goto(server.url("acme.localhost", "/admin/login/"))
    page.get_by_role("link", name="Forgotten your login credentials?").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Reset your password")
    expect(page.locator(".site-name")).to_contain_text("Acme Corporation")
    screenshot(page, "password-reset-form")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    screenshot(page, "password-reset-sent")

    # The worker sends it; the link is on acme's own domain.
    (message,) = wait_for_mail(mail_and_worker, owner.email)
    assert message["From"] == "Acme Corporation <noreply@localhost>"
    link = RESET_LINK.search(text_of(message)).group(0)
    assert link.startswith(server.url("acme.localhost", "/reset/"))

    # The same link on another tenant's host does not work.
    page.goto(link.replace("acme.localhost", "global.localhost"))
    expect(page.get_by_role("heading", level=1)).to_have_text("This link does not work")

    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a new password")
    page.get_by_label(re.compile(r"^New password:?$")).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    screenshot(page, "password-reset-choose")
    page.get_by_role("button", name="Set my password").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your password has been changed")
    page.get_by_role("link", name="Log in").click()
    page.get_by_label("Username").fill(owner.username)
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#site-name")).to_contain_text("Acme Corporation administration")
    # The link was for one use.
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("This link does not work")


def _png() -> bytes:
    data = io.BytesIO()
    Image.new("RGB", (16, 16), "#7a1f5c").save(data, "PNG")
    return data.getvalue()
