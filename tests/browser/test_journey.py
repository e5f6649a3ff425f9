"""What a person sees, in a real browser against a real server, in both modes.

The sign-up journey needs /register/ (the sign-up issue); the other journey covers everything
else now: landing page, platform log-in and "my sites", a tenant's site, its admin, an edit
seen on the site and nowhere else, branding, the 404 page, log-out.
"""

import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from home.models import PageContent, SiteSettings
from tenants.models import Tenant
from tenants.runtime.context import tenant_context
from tests.support.browser import DESKTOP, PHONE
from tests.support.members import PASSWORD, remove_sign_up

pytestmark = pytest.mark.browser


def rgb(hex_colour):
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


@pytest.fixture
def demo(db):
    return {t.slug: t for t in Tenant.objects.all()}


@pytest.fixture
def restore_acme(demo):
    """Put acme back as it was: page titles, branding, owner (the database is shared)."""
    acme = demo["acme"]
    with tenant_context(acme):
        titles = dict(PageContent.objects.values_list("pk", "title"))
    yield
    with tenant_context(acme):
        for pk, title in titles.items():
            PageContent.objects.filter(pk=pk).update(title=title)
        SiteSettings.objects.all().delete()
    Tenant.objects.filter(pk=acme.pk).update(owner=None)


@pytest.fixture
def platform_user(demo, restore_acme):
    """A platform account that owns Acme Corporation."""
    with tenant_context(demo["default"]):
        user = get_user_model().objects.create_user(
            "web-platform-owner", "owner@example.com", PASSWORD
        )
    Tenant.objects.filter(pk=demo["acme"].pk).update(owner=user)
    yield user
    Tenant.objects.filter(pk=demo["acme"].pk).update(owner=None)
    for tenant in Tenant.objects.filter(owner=user):  # a site sign-up may have given them
        tenant.delete(force_drop=True)
    with tenant_context(demo["default"]):
        user.delete()


def log_in(page, username, password=PASSWORD):
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_landing_log_in_edit_content_and_branding_see_it_only_on_own_site(
    server, page, screenshot, demo, platform_user, member_of
):
    owner = member_of(demo["acme"]).username
    stamp = uuid.uuid4().hex[:6]
    new_title = f"Acme rockets, now reusable {stamp}"
    new_name = f"Acme Rocketry {stamp}"
    colour = "#7a1f5c"
    logo = server.url("acme.localhost", "/static/admin/img/icon-yes.svg")

    # The platform's landing page: what it is, a sign-up form, a log-in link.
    page.goto(server.url("localhost"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Your own website")
    signup = page.locator("#signup form")
    expect(signup).to_have_attribute("action", "/register/")
    for label in ("Username", "Email", "Password", "Site name (optional)"):
        expect(signup.get_by_label(label, exact=True)).to_be_visible()
    expect(page.locator(".site-header")).to_have_css("background-color", rgb("#1f5fbf"))
    screenshot(page, "landing")
    # Keyboard: the first Tab stop skips to the content; fields are reached in order.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    signup.get_by_label("Username").focus()
    page.keyboard.press("Tab")
    expect(signup.get_by_label("Email")).to_be_focused()
    screenshot(page, "landing-keyboard-focus")
    page.set_viewport_size(PHONE)
    screenshot(page, "landing-phone")
    page.set_viewport_size(DESKTOP)

    # Log-in with a wrong password: the error in place, the username kept, the password not.
    page.get_by_role("link", name="Log in").first.click()
    log_in(page, "web-platform-owner", "wrong password")
    expect(page.get_by_role("alert")).to_contain_text("correct username and password")
    expect(page.get_by_label("Username")).to_have_value("web-platform-owner")
    expect(page.get_by_label("Password")).to_have_value("")
    screenshot(page, "login-error")

    # Log in on the platform: "my sites" lists the site this person owns, and only that one.
    log_in(page, "web-platform-owner")
    expect(page).to_have_url(server.url("localhost"))
    my_sites = page.locator("section", has=page.get_by_role("heading", name="My sites"))
    expect(my_sites.get_by_role("link", name="Acme Corporation", exact=True)).to_have_attribute(
        "href", server.url("acme.localhost")
    )
    expect(my_sites.get_by_role("link", name="Admin of Acme Corporation")).to_have_attribute(
        "href", server.url("acme.localhost", "/admin/")
    )
    owned = Tenant.objects.filter(owner=platform_user).count()  # acme, and any of their own
    expect(my_sites.get_by_role("listitem")).to_have_count(owned)
    for other in ("Global Services", "Tech Innovations", "JCW Trading Hub"):
        expect(my_sites.get_by_text(other)).to_have_count(0)
    screenshot(page, "landing-signed-in")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("navigation").get_by_role("link", name="Log in")).to_be_visible()
    expect(page.get_by_role("heading", name="My sites")).to_have_count(0)

    # The tenant's site: its name, its published content in order, a page per item.
    page.goto(server.url("acme.localhost"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome to Acme Corporation")
    expect(page.locator(".card h2")).to_have_text(["Acme rockets", "Acme anvils", "About Acme"])
    screenshot(page, "tenant-home")
    page.get_by_role("link", name="Acme anvils").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme anvils")
    expect(page).to_have_title("Acme anvils · Acme Corporation")

    # A page that does not exist: a clear 404 in the tenant's look.
    response = page.goto(server.url("acme.localhost", "/no-such-page/"))
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    expect(page.locator(".site-name")).to_have_text("Acme Corporation")
    screenshot(page, "tenant-404")

    # Its admin: the owner logs in and edits a page.
    page.goto(server.url("acme.localhost", "/admin/"))
    page.get_by_label("Username").fill(owner)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#site-name")).to_contain_text("Acme Corporation administration")
    screenshot(page, "admin")
    page.set_viewport_size(PHONE)
    screenshot(page, "admin-phone")
    page.set_viewport_size(DESKTOP)
    page.get_by_role("link", name="Pages").first.click()
    page.get_by_role("link", name="Acme rockets").click()
    page.get_by_label("Title").fill(new_title)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")

    # ... and the site's branding.
    page.goto(server.url("acme.localhost", "/admin/home/sitesettings/"))
    page.get_by_label("Site name").fill(new_name)
    page.get_by_label("Brand colour").fill(colour)
    page.get_by_label("Logo URL").fill(logo)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("successfully")
    expect(page.locator("#header")).to_have_css("background-color", rgb(colour))
    screenshot(page, "admin-branded")

    # The site shows both.
    page.goto(server.url("acme.localhost"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Welcome to {new_name}")
    expect(page.locator(".card h2").first).to_have_text(new_title)
    expect(page.locator(".site-header")).to_have_css("background-color", rgb(colour))
    header_logo = page.locator(".site-header img.logo")
    expect(header_logo).to_have_attribute("src", logo)
    assert header_logo.evaluate("img => img.complete && img.naturalWidth > 0")
    screenshot(page, "tenant-home-branded")
    page.set_viewport_size(PHONE)
    screenshot(page, "tenant-home-phone")
    page.set_viewport_size(DESKTOP)

    # Another tenant's site shows none of it, and the session is not signed in there.
    for host in ("global.localhost", "localhost"):
        page.goto(server.url(host))
        html = page.content()
        assert new_title not in html and new_name not in html and stamp not in html
        expect(page.locator(".site-header")).not_to_have_css("background-color", rgb(colour))
    page.goto(server.url("global.localhost", "/admin/"))
    expect(page).to_have_url(re.compile(r"/admin/login/"))

    # Log out on the tenant's site: the admin wants a log-in again.
    page.goto(server.url("acme.localhost"))
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("Signed in as")).to_have_count(0)
    page.goto(server.url("acme.localhost", "/admin/"))
    expect(page).to_have_url(re.compile(r"/admin/login/"))


# --- Sign-up (needs /register/ from the sign-up issue) -------------------------------------------


@pytest.fixture
def signup_cleanup(db):
    """Remove what a sign-up made: its tenant (schema, domains, data) and its owner."""
    made = []
    yield made.append
    for username in made:
        remove_sign_up(username)


USERNAME = re.compile(r"^username", re.I)
EMAIL = re.compile(r"^e-?mail", re.I)
PASSWORD_LABEL = re.compile(r"^password:?$", re.I)  # not "Password confirmation"


def sign_up(page, server, username, email, password, site_name=""):
    page.goto(server.url("localhost"))
    form = page.locator("#signup form")
    form.get_by_label("Username").fill(username)
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill(password)
    form.get_by_label("Site name (optional)").fill(site_name)
    form.get_by_role("button", name="Create my site").click()


def test_sign_up_and_use_the_new_site(server, browser, page, screenshot, signup_cleanup):
    username = f"web{uuid.uuid4().hex[:8]}"
    site_name = f"Web Journey {username[3:]}"
    password = "a long and unusual passphrase 42"
    signup_cleanup(username)
    site = server.url(f"{username}.localhost")

    sign_up(page, server, username, f"{username}@example.com", password, site_name)

    # Landed on the new site, live, with its name and pre-loaded content.
    expect(page).to_have_url(site)
    expect(page.get_by_role("heading", level=1)).to_contain_text(site_name)
    expect(page.locator(".card h2").first).to_be_visible()
    screenshot(page, "signup-new-site")

    # The owner gets into its admin at once (logging in if not already) and edits a page.
    page.goto(server.url(f"{username}.localhost", "/admin/"))
    if page.locator("#login-form").count():
        page.get_by_label(USERNAME).fill(username)
        page.get_by_label(PASSWORD_LABEL).fill(password)
        page.get_by_role("button", name="Log in").click()
    expect(page.locator("#site-name")).to_contain_text(site_name)
    page.get_by_role("link", name="Pages").first.click()
    page.locator("#result_list tbody th a").first.click()
    new_title = f"Edited by {username}"
    page.get_by_label("Title").fill(new_title)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("successfully")
    page.goto(site)
    expect(page.get_by_role("link", name=new_title)).to_be_visible()

    # Another tenant's site shows none of it.
    for host in ("acme.localhost", "localhost"):
        page.goto(server.url(host))
        html = page.content()
        assert new_title not in html and site_name not in html

    # Log out on the new site: its admin wants a log-in again.
    page.goto(site)
    page.get_by_role("button", name="Log out").click()
    page.goto(server.url(f"{username}.localhost", "/admin/"))
    expect(page).to_have_url(re.compile(r"/admin/login/"))

    # Someone else signs up with the same name: the error in place, what was typed kept.
    other = browser.new_context(viewport=DESKTOP).new_page()
    sign_up(other, server, username, f"other-{username}@example.com", password, "Copycat")
    expect(other).to_have_url(re.compile("^" + re.escape(server.url("localhost"))))
    expect(
        other.get_by_text(re.compile(r"taken|exists|already|in use", re.I)).first
    ).to_be_visible()
    expect(other.get_by_label(USERNAME)).to_have_value(username)
    expect(other.get_by_label(EMAIL)).to_have_value(f"other-{username}@example.com")
    expect(other.get_by_label(PASSWORD_LABEL)).to_have_value("")
    screenshot(other, "signup-taken")
    other.context.close()
    assert not Tenant.objects.filter(name="Copycat").exists()
