"""What the browser shows and says, compared where it must agree (issue 12, items 5 to 7):
the sign-up form looks the same on the landing page and on /register/ with errors, every host
has an icon, no page logs a console error, and the admin's page list names its inputs."""

import pytest
from playwright.sync_api import expect

from home.models import SiteSettings
from tenants.models import Tenant
from tenants.runtime.context import tenant_context

pytestmark = pytest.mark.browser

FORM_LOOK = """form => {
    // clientHeight: the height inside the border (an invalid field has a thicker one)
    const input = form.querySelector('input[name=username]');
    const panel = form.closest('.panel');
    const px = value => Math.round(parseFloat(value));
    const i = getComputedStyle(input), p = panel && getComputedStyle(panel);
    return {
        input: [input.clientHeight, i.borderRadius, i.paddingLeft, i.display, i.fontSize],
        panel: p && [p.backgroundColor, p.borderTopStyle, px(p.paddingTop), p.borderRadius],
    };
}"""


@pytest.fixture
def console_errors(page):
    """Every console error and uncaught exception of the page, but for the page's own status
    (a 404 page, a form answered 400 with its errors): what it shows, not a fault in it."""
    errors = []

    def on_console(message):
        if message.type == "error" and message.location.get("url") != page.url:
            errors.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


@pytest.fixture
def acme_logo(server, db):
    acme = Tenant.objects.get(slug="acme")
    logo = server.url("acme.localhost", "/static/admin/img/icon-yes.svg")
    with tenant_context(acme):
        SiteSettings.objects.create(logo_url=logo)
    yield logo
    with tenant_context(acme):
        SiteSettings.objects.all().delete()


def test_the_sign_up_form_looks_the_same_with_errors(server, page, screenshot, console_errors):
    page.goto(server.url("localhost"))
    landing = page.locator("#signup form").evaluate(FORM_LOOK)
    assert landing["panel"] and landing["input"][0] >= 40  # styled, not the browser default

    page.goto(server.url("localhost", "/register/"))
    assert page.locator("form.form").evaluate(FORM_LOOK) == landing
    page.get_by_label("Username").fill("Not a valid name!")
    page.get_by_label("Email").fill("not-an-address")
    page.get_by_role("button", name="Create my site").click()
    expect(page.locator(".errorlist").first).to_be_visible()
    assert page.locator("form.form").evaluate(FORM_LOOK) == landing
    expect(page.get_by_label("Username")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "register-errors")
    assert console_errors == []


def test_every_host_has_an_icon_and_no_page_logs_an_error(
    server, page, console_errors, acme_logo, member_of
):
    owner = member_of(Tenant.objects.get(slug="acme")).username
    platform_icon = None
    for host, path in [
        ("localhost", "/"),
        ("localhost", "/login/"),
        ("localhost", "/register/"),
        ("global.localhost", "/"),
        ("global.localhost", "/pages/999999/"),  # its 404 page
        ("acme.localhost", "/"),
        ("acme.localhost", "/admin/login/"),
    ]:
        page.goto(server.url(host, path))
        icon = page.locator("link[rel=icon]")
        expect(icon).to_have_count(1)
        href = icon.get_attribute("href")
        assert page.evaluate("link => fetch(link.href).then(r => r.ok)", icon.element_handle())
        if host == "acme.localhost":
            assert href == acme_logo
        else:
            platform_icon = platform_icon or href
            assert href == platform_icon  # the platform's, never acme's logo
    assert console_errors == []

    # The admin's page list: each editable input is named by its column and its page.
    page.get_by_label("Username").fill(owner)
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Log in").click()
    page.goto(server.url("acme.localhost", "/admin/home/pagecontent/"))
    expect(page.get_by_role("spinbutton", name="Ordering of “Acme anvils”")).to_be_visible()
    expect(page.get_by_role("checkbox", name="Published of “About Acme”")).to_be_checked()
    expect(page.get_by_role("checkbox", name="Published of “Global logistics”")).to_have_count(0)
    assert console_errors == []
