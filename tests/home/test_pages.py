"""The pages a person sees, through Django's test client, in both modes: the platform's landing
page and log-in, a tenant's home, pages and 404, and its branding (which never crosses over)."""

import re
from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from accounts.models import Membership
from home.colours import contrast_ratio, readable_on
from home.models import DEFAULT_BRAND_COLOUR, PageContent, SiteSettings
from tenants.models import Tenant
from tenants.runtime.context import tenant_context
from tests.support.members import PASSWORD, admin_login, make_member
from tests.support.modes import SCHEMA_MODE

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_cached_branding():
    """Tests roll back the branding they save; the cached copy must not outlive it."""
    cache.clear()
    yield
    cache.clear()


def html(response):
    return response.content.decode()


def platform_user(tenants, username="platform-person"):
    with tenant_context(tenants["default"]):
        return get_user_model().objects.create_user(username, f"{username}@example.com", PASSWORD)


def platform_login(username, password=PASSWORD):
    client = Client(HTTP_HOST="localhost")
    client.get("/login/")
    response = client.post("/login/", {"username": username, "password": password})
    return client, response


def brand(tenant, **fields):
    with tenant_context(tenant):
        return SiteSettings.objects.create(**fields)


# --- The platform's landing page ------------------------------------------------------------------


def test_landing_page_explains_and_offers_sign_up_and_log_in(host_client):
    page = html(host_client("localhost").get("/"))
    assert "Your own website, live the moment you sign up" in page
    form = re.search(
        r'<form class="form" method="post" action="/register/">(.*?)</form>', page, re.S
    )
    assert form, "a sign-up form posting to /register/"
    for name in ("username", "email", "password", "site_name"):
        assert f'name="{name}"' in form.group(1)
        assert f'<label for="id_{name}">' in form.group(1)
    assert "csrfmiddlewaretoken" in form.group(1)
    assert 'href="/login/"' in page


def test_tenant_home_is_not_the_landing_page(host_client):
    page = html(host_client("acme.localhost").get("/"))
    assert "Welcome to Acme Corporation" in page
    assert "/register/" not in page and "My sites" not in page


def listed_sites(page):
    """{name: href} of the "My sites" list."""
    return {
        unescape(name): href
        for href, name in re.findall(r'class="site-title" href="([^"]+)">([^<]+)</a>', page)
    }


def owned_names(user):
    return set(Tenant.objects.filter(owner=user).values_list("name", flat=True))


def test_my_sites_lists_the_sites_this_person_owns_and_no_other(tenants):
    owner = platform_user(tenants)
    Tenant.objects.filter(slug__in=["acme", "global"]).update(owner=owner)
    client, response = platform_login("platform-person")
    assert response.status_code == 302 and response.url == "/"
    page = html(client.get("/"))
    assert "My sites" in page and "/register/" not in page
    sites = listed_sites(page)
    # (Sign-up may have given this person a site of their own too: the list is what they own.)
    assert set(sites) == owned_names(owner) >= {"Acme Corporation", "Global Services"}
    assert sites["Acme Corporation"] == "http://acme.localhost/"
    assert sites["Global Services"] == "http://global.localhost/"
    assert 'href="http://acme.localhost/admin/">' in page
    for other in ("Tech Innovations", "JCW Trading Hub", "techinnov.localhost"):
        assert other not in page


def test_my_sites_shows_nothing_of_other_peoples_sites(tenants):
    Tenant.objects.filter(slug="acme").update(owner=platform_user(tenants, "acme-boss"))
    nobody = platform_user(tenants, "nobody")
    client, _ = platform_login("nobody")
    page = html(client.get("/"))
    assert set(listed_sites(page)) == owned_names(nobody)
    assert "acme.localhost" not in page and "Acme Corporation" not in page
    if not owned_names(nobody):
        assert "You do not own a site yet." in page


def test_log_in_error_is_shown_in_place_and_keeps_the_username(tenants):
    platform_user(tenants)
    client, response = platform_login("platform-person", "not the password")
    page = html(response)
    assert response.status_code == 200
    assert 'role="alert"' in page and "correct username and password" in page
    assert 'value="platform-person"' in page
    assert "not the password" not in page
    assert "Signed in as" not in html(client.get("/"))


def test_log_out_ends_the_session(tenants):
    platform_user(tenants)
    client, _ = platform_login("platform-person")
    assert "Signed in as <strong>platform-person</strong>" in html(client.get("/"))
    assert client.get("/logout/").status_code == 405  # log-out is a POST (a form button)
    response = client.post("/logout/")
    assert response.status_code == 302 and response.url == "/"
    assert "Signed in as" not in html(client.get("/"))


def test_platform_session_is_not_signed_in_on_a_tenant_site(tenants):
    Tenant.objects.filter(slug="acme").update(owner=platform_user(tenants))
    client, _ = platform_login("platform-person")
    session_cookie = client.cookies["sessionid"].value
    other = Client(HTTP_HOST="acme.localhost")
    other.cookies["sessionid"] = session_cookie
    assert "Signed in as" not in html(other.get("/"))
    assert other.get("/admin/").status_code == 302


# --- A tenant's site ------------------------------------------------------------------------------


def test_home_shows_published_pages_in_order(tenants, host_client):
    with tenant_context(tenants["acme"]):
        PageContent.objects.create(title="Draft news", ordering=0, published=False)
        PageContent.objects.filter(title="About Acme").update(ordering=0)
    page = html(host_client("acme.localhost").get("/"))
    titles = re.findall(r'<h2><a href="/pages/\d+/">(.*?)</a></h2>', page)
    assert titles == ["About Acme", "Acme rockets", "Acme anvils"]


def test_each_page_has_its_own_url(tenants, host_client):
    with tenant_context(tenants["acme"]):
        anvils = PageContent.objects.get(title="Acme anvils")
    response = host_client("acme.localhost").get(f"/pages/{anvils.pk}/")
    assert response.status_code == 200
    assert "<title>Acme anvils · Acme Corporation</title>" in html(response)


@pytest.mark.parametrize("path", ["/no-such-page/", "/pages/999999/", "/pages/abc/"])
def test_missing_pages_get_a_404_in_the_tenants_look(host_client, path):
    response = host_client("acme.localhost").get(path)
    page = html(response)
    assert response.status_code == 404
    assert "Page not found" in page and "on Acme Corporation" in page
    assert '<a class="site-name" href="/">' in page and "/static/home/site.css" in page


def test_unpublished_page_is_a_404(tenants, host_client):
    with tenant_context(tenants["acme"]):
        draft = PageContent.objects.create(title="Secret draft", published=False)
    response = host_client("acme.localhost").get(f"/pages/{draft.pk}/")
    assert response.status_code == 404 and "Secret draft" not in html(response)


def test_another_tenants_page_id_shows_nothing_of_it(tenants, host_client):
    with tenant_context(tenants["global"]):
        theirs = PageContent.objects.get(title="Global logistics")
    response = host_client("acme.localhost").get(f"/pages/{theirs.pk}/")
    assert "Global logistics" not in html(response)
    if not SCHEMA_MODE:  # ids are shared in row mode; in schema mode each schema counts its own
        assert response.status_code == 404


def test_static_files_are_served_by_the_app(host_client):
    response = host_client("acme.localhost").get("/static/home/site.css")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    assert b"--brand" in b"".join(response.streaming_content)


# --- Branding -------------------------------------------------------------------------------------


def test_branding_shows_on_the_tenants_pages_and_nowhere_else(tenants, host_client):
    brand(
        tenants["acme"],
        site_name="Acme Rocketry",
        tagline="Up, up and away",
        brand_colour="#AA3300",
        logo_url="https://example.com/acme.png",
    )
    for path in ("/", "/no-such-page/"):
        page = html(host_client("acme.localhost").get(path))
        assert "Acme Rocketry" in page and "--brand: #aa3300" in page
        assert '<img class="logo" src="https://example.com/acme.png"' in page
    assert "Up, up and away" in html(host_client("acme.localhost").get("/"))
    for host in ("global.localhost", "localhost", "techinnov.localhost"):
        page = html(host_client(host).get("/"))
        assert "Acme Rocketry" not in page and "#aa3300" not in page
        assert "acme.png" not in page and "Up, up and away" not in page
        assert f"--brand: {DEFAULT_BRAND_COLOUR}" in page


def test_cached_branding_is_per_tenant(tenants):
    brand(tenants["acme"], site_name="Acme Rocketry")
    with tenant_context(tenants["acme"]):
        assert SiteSettings.current().display_name == "Acme Rocketry"  # now cached
        assert cache.get(SiteSettings.CACHE_KEY) is not None
    with tenant_context(tenants["global"]):
        assert cache.get(SiteSettings.CACHE_KEY) is None
        assert SiteSettings.current().display_name == "Global Services"
        assert SiteSettings.current().pk is None


def test_a_branding_change_is_seen_at_once(tenants, host_client):
    settings = brand(tenants["acme"], site_name="Before")
    assert "Welcome to Before" in html(host_client("acme.localhost").get("/"))  # cached now
    with tenant_context(tenants["acme"]):
        settings.site_name = "After"
        settings.save()
    assert "Welcome to After" in html(host_client("acme.localhost").get("/"))
    with tenant_context(tenants["acme"]):
        settings.delete()
    assert "Welcome to Acme Corporation" in html(host_client("acme.localhost").get("/"))


def test_a_bad_stored_colour_never_reaches_the_stylesheet(tenants, host_client):
    settings = brand(tenants["acme"], brand_colour="#123456")
    with tenant_context(tenants["acme"]):
        SiteSettings.objects.filter(pk=settings.pk).update(brand_colour="red;}</")
    page = html(host_client("acme.localhost").get("/"))
    assert "red;" not in page
    assert f"--brand: {DEFAULT_BRAND_COLOUR}" in page


@pytest.mark.parametrize(
    "background, text", [("#1f5fbf", "#ffffff"), ("#ffee00", "#111111"), ("#000000", "#ffffff")]
)
def test_text_on_the_brand_colour_is_readable(background, text):
    assert readable_on(background) == text
    assert contrast_ratio(background, text) >= 4.5


def test_links_keep_their_contrast_with_a_light_brand_colour():
    assert SiteSettings(brand_colour="#ffee00").link_colour == "#1f2933"
    assert SiteSettings(brand_colour="#1f5fbf").link_colour == "#1f5fbf"
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21)


# --- Branding in the admin ------------------------------------------------------------------------


def owner_admin(tenant, role=Membership.Role.OWNER):
    host = {"acme": "acme.localhost", "global": "global.localhost"}[tenant.slug]
    user = make_member(tenant, f"{tenant.slug}-{role}", role)
    client = Client(HTTP_HOST=host)
    assert admin_login(client, user.username).status_code == 302
    return client


FORM = {"site_name": "Acme Rocketry", "tagline": "", "brand_colour": "#aa3300", "logo_url": ""}


def test_owner_sets_branding_in_the_admin(tenants, host_client):
    client = owner_admin(tenants["acme"])
    response = client.get("/admin/home/sitesettings/")
    assert response.status_code == 302 and response.url == "/admin/home/sitesettings/add/"
    assert 'type="color"' in html(client.get(response.url))
    assert client.post(response.url, FORM).status_code == 302
    with tenant_context(tenants["acme"]):
        settings = SiteSettings.objects.get()
    assert settings.tenant_id == tenants["acme"].pk
    response = client.get("/admin/home/sitesettings/")
    assert response.url == f"/admin/home/sitesettings/{settings.pk}/change/"
    assert client.get("/admin/home/sitesettings/add/").status_code == 403  # one per site
    assert "--header-bg: #aa3300" in html(client.get("/admin/"))
    assert "Welcome to Acme Rocketry" in html(host_client("acme.localhost").get("/"))
    with tenant_context(tenants["global"]):
        assert not SiteSettings.objects.exists()


@pytest.mark.parametrize(
    "colour, error",
    [
        ("#12345g", "Enter a colour as #rrggbb."),
        ("red", "Enter a colour as #rrggbb."),
        ("red;}</style><script>", "Ensure this value has at most 7 characters"),
    ],
)
def test_a_bad_colour_is_refused_in_place(tenants, colour, error):
    client = owner_admin(tenants["acme"])
    response = client.post("/admin/home/sitesettings/add/", {**FORM, "brand_colour": colour})
    assert response.status_code == 200
    assert error in html(response) and "<script>" not in html(response)
    with tenant_context(tenants["acme"]):
        assert not SiteSettings.objects.exists()


def test_editors_cannot_change_branding(tenants):
    settings = brand(tenants["acme"], site_name="Acme Rocketry")
    client = owner_admin(tenants["acme"], Membership.Role.EDITOR)
    assert client.get("/admin/home/pagecontent/").status_code == 200
    url = f"/admin/home/sitesettings/{settings.pk}/change/"
    client.post(url, {**FORM, "site_name": "Hijacked"})
    with tenant_context(tenants["acme"]):
        assert SiteSettings.objects.get().site_name == "Acme Rocketry"
    assert client.post("/admin/home/sitesettings/add/", FORM).status_code == 403


def test_owner_cannot_touch_another_tenants_branding(tenants):
    theirs = brand(tenants["global"], site_name="Global Brand", brand_colour="#00aa00")
    client = owner_admin(tenants["acme"])
    response = client.get(f"/admin/home/sitesettings/{theirs.pk}/change/", follow=True)
    assert "Global Brand" not in html(response)
    client.post(f"/admin/home/sitesettings/{theirs.pk}/change/", FORM)
    client.post(f"/admin/home/sitesettings/{theirs.pk}/delete/", {"post": "yes"})
    with tenant_context(tenants["global"]):
        kept = SiteSettings.objects.get()
    assert (kept.site_name, kept.brand_colour) == ("Global Brand", "#00aa00")
