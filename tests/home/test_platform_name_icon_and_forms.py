"""The platform's name as a setting, a site icon on every host, the sign-up form's look and
accessible names in the admin's page list (issue 12, items 5 to 7), checked in the HTML."""

import re

import pytest
from django.test import Client

from home.models import SiteSettings, platform_icon_url
from tests.support.members import admin_login, make_member

pytestmark = pytest.mark.django_db
LOGO = "https://cdn.example/acme-logo.png"


def _icon(html):
    links = re.findall(r'<link rel="icon" href="([^"]+)">', html)
    assert len(links) == 1, links
    return links[0]


def test_platform_name_is_a_setting(settings, host_client):
    settings.PLATFORM_NAME = "Sitewright"
    html = host_client("localhost").get("/").content.decode()
    header = re.search(r'<a class="site-name"[^>]*>(.*?)</a>', html, re.S).group(1)
    lead = re.search(r'<p class="lead">(.*?)</p>', html, re.S).group(1)
    footer = re.search(r'<footer class="site-footer">(.*?)</footer>', html, re.S).group(1)
    assert all("Sitewright" in part for part in (header, lead, footer))
    assert "Default Tenant" not in html
    acme = host_client("acme.localhost").get("/").content.decode()
    assert "Sitewright" not in acme and "Acme Corporation" in acme


def test_every_host_declares_its_icon_and_serves_favicon_ico(host_client, in_tenant, tenants):
    with in_tenant(tenants["acme"]):
        SiteSettings.objects.create(logo_url=LOGO)
    for host, icon in [
        ("acme.localhost", LOGO),
        ("global.localhost", platform_icon_url()),  # never acme's
        ("localhost", platform_icon_url()),
    ]:
        client = host_client(host)
        for path in ("/", "/no-such-page/", "/admin/login/"):
            assert _icon(client.get(path).content.decode()) == icon, (host, path)
        response = client.get("/favicon.ico")
        assert response.status_code == 302 and response["Location"] == icon
        assert "max-age=3600" in response["Cache-Control"]
    assert host_client("localhost").get(platform_icon_url()).status_code == 200
    bad_host = Client(HTTP_HOST="nobody!").get("/").content.decode()  # the middleware's page
    assert _icon(bad_host) == platform_icon_url()


@pytest.mark.parametrize("method", ["get", "post"])
def test_the_sign_up_page_uses_the_forms_look(host_client, method):
    client = host_client("localhost")
    data = {"username": "Bad Name!", "email": "nope", "password": "1"}
    response = client.post("/register/", data) if method == "post" else client.get("/register/")
    html = response.content.decode()
    panel = re.search(r'<section class="panel".*?</section>', html, re.S)
    assert panel and re.search(r'<form class="form" method="post" action="/register/"', panel[0])
    if method == "post":
        assert response.status_code == 400 and 'aria-invalid="true"' in panel[0]


def test_the_page_lists_editable_inputs_have_accessible_names(tenants):
    owner = make_member(tenants["acme"], "acme-lister")
    client = Client(HTTP_HOST="acme.localhost")
    assert admin_login(client, owner.username).status_code == 302
    html = client.get("/admin/home/pagecontent/").content.decode()
    inputs = re.findall(r'<input[^>]+name="form-\d+-(?:ordering|published)"[^>]*>', html)
    assert len(inputs) == 6  # acme's three pages, two columns each
    names = sorted(re.search(r'aria-label="([^"]+)"', i).group(1) for i in inputs)
    assert names == sorted(
        f"{column} of “{title}”"
        for column in ("Ordering", "Published")
        for title in ("Acme rockets", "Acme anvils", "About Acme")
    )
