"""Sign-up on the platform site: the /register/ page and POST /api/register/, in both modes."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import Client

from home.models import PageContent
from tenants.models import Tenant
from tenants.runtime.context import tenant_context
from tests.support.members import PASSWORD, admin_login
from tests.support.platform import everything

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def platform():
    return Client(HTTP_HOST="localhost")


def api(client, payload, content_type="application/json"):
    body = json.dumps(payload) if content_type == "application/json" else payload
    return client.post("/api/register/", body, content_type=content_type)


def signup_data(**overrides):
    return {"username": "nora", "email": "nora@example.com", "password": PASSWORD, **overrides}


# --- The page ------------------------------------------------------------------------------------


def test_register_page_has_a_labelled_form(platform):
    response = platform.get("/register/")
    assert response.status_code == 200
    html = response.content.decode()
    for field in ("username", "email", "password", "site_name"):
        assert f'<label for="id_{field}"' in html
    assert "your-username.localhost" in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_register_sends_the_person_to_their_live_site(platform):
    response = platform.post("/register/", {**signup_data(), "site_name": "Nora's Knits"})
    assert response.status_code == 302
    assert response.url == "http://nora.localhost/"
    site = Client(HTTP_HOST="nora.localhost")
    home = site.get("/")
    assert home.status_code == 200
    assert b"Nora&#x27;s Knits" in home.content
    assert b"Make it yours" in home.content


def test_the_owner_edits_the_preloaded_content_at_once(platform):
    platform.post("/register/", signup_data())
    site = Client(HTTP_HOST="nora.localhost")
    assert admin_login(site, "nora").url == "/admin/"
    tenant = Tenant.objects.get(slug="nora")
    with tenant_context(tenant):
        page = PageContent.objects.get(title="Make it yours")
    response = site.post(
        f"/admin/home/pagecontent/{page.pk}/change/",
        {"title": "Fresh wool", "body": "In stock now.", "ordering": 1, "published": "on"},
    )
    assert response.status_code == 302
    assert b"Fresh wool" in site.get("/").content


def test_form_errors_keep_the_values_but_not_the_password(platform):
    before = everything()
    response = platform.post("/register/", signup_data(username="www", site_name="My <b>site</b>"))
    assert response.status_code == 400
    html = response.content.decode()
    assert "The site name &#x27;www&#x27; is reserved." in html
    assert 'value="www"' in html
    assert 'value="nora@example.com"' in html
    assert "My &lt;b&gt;site&lt;/b&gt;" in html
    assert PASSWORD not in html
    assert everything() == before


def test_password_validators_apply(platform):
    for password, message in [
        ("short", "too short"),
        ("12345678901", "entirely numeric"),
        ("password123", "too common"),
        ("nora@example.com!", "too similar"),
    ]:
        response = platform.post("/register/", signup_data(password=password))
        assert response.status_code == 400
        assert message in response.content.decode()
    assert not User.objects.filter(username="nora").exists()


def test_sign_up_is_only_on_the_platform_site(host_client):
    client = host_client("acme.localhost")
    assert client.get("/register/").status_code == 404
    response = api(client, signup_data())
    assert response.status_code == 404
    assert not User.objects.filter(username="nora").exists()


# --- The JSON endpoint ---------------------------------------------------------------------------


def test_api_creates_the_site(platform):
    response = api(platform, signup_data(site_name="Nora's Knits"))
    assert response.status_code == 201
    assert response.json() == {
        "tenant": "nora",
        "name": "Nora's Knits",
        "domain": "nora.localhost",
        "url": "http://nora.localhost/",
        "admin_url": "http://nora.localhost/admin/",
        "message": "Nora's Knits is live at nora.localhost.",
    }
    assert Client(HTTP_HOST="nora.localhost").get("/").status_code == 200


def test_api_url_carries_the_servers_port(platform):
    response = platform.post(
        "/api/register/",
        json.dumps(signup_data()),
        content_type="application/json",
        SERVER_PORT="8000",
    )
    assert response.json()["url"] == "http://nora.localhost:8000/"


@pytest.mark.parametrize(
    "payload, field, message",
    [
        (signup_data(username="www"), "username", "reserved"),
        (signup_data(username="acme"), "username", "reserved"),
        (signup_data(username="john.doe"), "username", "only letters"),
        (signup_data(email="not-an-email"), "email", "valid email"),
        (signup_data(password="123"), "password", "too short"),
        ({"username": "nora"}, "password", "required"),
        (signup_data(username=5), "username", "Must be a string"),
        (signup_data(password=["x"]), "password", "Must be a string"),
    ],
)
def test_api_refusals_name_the_problem(platform, payload, field, message):
    before = everything()
    response = api(platform, payload)
    assert response.status_code == 400
    errors = response.json()["errors"][field]
    assert any(message in error["message"] for error in errors) or message in str(errors)
    assert everything() == before


def test_api_taken_username(platform):
    assert api(platform, signup_data()).status_code == 201
    for username in ("nora", "NORA", "Nora"):
        response = api(platform, signup_data(username=username, email="x@example.com"))
        assert response.status_code == 400
        message = response.json()["errors"]["username"][0]["message"]
        assert "already exists" in message or "taken" in message
    assert Tenant.objects.filter(slug="nora").count() == 1


def test_api_wants_json(platform):
    assert api(platform, "username=nora", "application/x-www-form-urlencoded").status_code == 415
    assert api(platform, "{not json", "application/json").status_code == 400
    assert api(platform, "[1, 2]", "application/json").status_code == 400
    assert platform.get("/api/register/").status_code == 405


HOSTILE = [
    "nora'; DROP TABLE auth_user; --",
    'nora"; DROP SCHEMA public CASCADE; --',
    "nora;",
    "../etc",
    "..",
    "nóra",
    "n\u043era",  # Cyrillic o
    "\u212aelvin",  # Kelvin sign
    "nora\x00",
    "x" * 10_000,
    "1; SELECT pg_sleep(10)",
    "public",
    "pg_toast",
    "_template_x",
    "information_schema",
    "nora.localhost",
    "NORA--X",
]


@pytest.mark.parametrize("username", HOSTILE)
def test_hostile_usernames_are_refused_cleanly(platform, username):
    before = everything()
    response = api(platform, signup_data(username=username))
    assert response.status_code == 400
    assert response.json()["errors"]
    assert everything() == before


@pytest.mark.parametrize(
    "field, value",
    [
        ("email", "x" * 10_000 + "@example.com"),
        ("password", "p" * 10_000),
        ("site_name", "s" * 10_000),
    ],
)
def test_huge_values_are_refused_cleanly(platform, field, value):
    before = everything()
    response = api(platform, signup_data(**{field: value}))
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert everything() == before


def test_a_body_too_big_to_read_is_a_400(platform):
    response = api(platform, signup_data(site_name="s" * 3_000_000))
    assert response.status_code == 400
    assert not User.objects.filter(username="nora").exists()


def test_surrounding_whitespace_is_trimmed_like_any_django_form(platform):
    response = api(platform, signup_data(username=" nora\n"))
    assert response.status_code == 201
    assert response.json()["tenant"] == "nora"


def test_site_name_is_text_not_markup(platform):
    api(platform, signup_data(site_name="<script>alert(1)</script>"))
    html = Client(HTTP_HOST="nora.localhost").get("/").content
    assert b"<script>alert(1)</script>" not in html
    assert b"&lt;script&gt;" in html


# --- Password: hashed once -----------------------------------------------------------------------

ENCODE_CALLS = []


class CountingHasher(MD5PasswordHasher):
    algorithm = "counting_md5"

    def encode(self, password, salt):
        ENCODE_CALLS.append(password)
        return super().encode(password, salt)


def test_the_password_is_hashed_once_per_sign_up(platform, settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    ENCODE_CALLS.clear()
    assert api(platform, signup_data()).status_code == 201
    assert ENCODE_CALLS == [PASSWORD]
    site = Client(HTTP_HOST="nora.localhost")
    assert admin_login(site, "nora").url == "/admin/"  # the owner's copy uses the same hash


# --- Isolation -----------------------------------------------------------------------------------


def test_the_new_owner_gets_nowhere_else(platform, tenants):
    api(platform, signup_data())
    for host in ("acme.localhost", "global.localhost"):
        response = admin_login(Client(HTTP_HOST=host), "nora")
        assert response.status_code == 200  # the log-in form again
    # On the platform site the account can sign in, but is no staff: no platform admin.
    platform_admin = Client(HTTP_HOST="localhost")
    assert admin_login(platform_admin, "nora").status_code == 200
    assert platform_admin.get("/admin/tenants/tenant/").status_code == 302


def test_another_sites_session_is_not_a_session_on_the_new_site(platform, tenants):
    from tests.support.members import make_member

    make_member(tenants["acme"], "acme-boss")
    acme = Client(HTTP_HOST="acme.localhost")
    admin_login(acme, "acme-boss")
    api(platform, signup_data())
    cookie = acme.cookies["sessionid"].value
    stranger = Client(HTTP_HOST="nora.localhost")
    stranger.cookies["sessionid"] = cookie
    assert stranger.get("/admin/").status_code == 302
    nora = Client(HTTP_HOST="nora.localhost")
    admin_login(nora, "nora")
    acme_with_noras_cookie = Client(HTTP_HOST="acme.localhost")
    acme_with_noras_cookie.cookies["sessionid"] = nora.cookies["sessionid"].value
    assert acme_with_noras_cookie.get("/admin/").status_code == 302


def test_the_new_sites_content_is_its_own(platform, tenants):
    api(platform, signup_data())
    with tenant_context(tenants["acme"]):
        assert not PageContent.objects.filter(title="Make it yours").exists()
    html = Client(HTTP_HOST="nora.localhost").get("/").content
    assert b"Acme" not in html


# --- Platform admin ------------------------------------------------------------------------------


@pytest.fixture
def platform_staff():
    from django.test import override_settings

    with override_settings(TENANCY_AUTO_PROVISION=False):
        User.objects.create_user(
            "operator", "op@example.com", PASSWORD, is_staff=True, is_superuser=True
        )
    client = Client(HTTP_HOST="localhost")
    assert admin_login(client, "operator").url == "/admin/"
    return client


def test_platform_admin_adding_a_user_provisions_their_site(platform_staff):
    response = platform_staff.post(
        "/admin/auth/user/add/",
        {
            "username": "olga",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "usable_password": "true",
        },
    )
    assert response.status_code == 302
    assert Tenant.objects.get(slug="olga").owner.username == "olga"
    assert admin_login(Client(HTTP_HOST="olga.localhost"), "olga").url == "/admin/"


def test_platform_admin_refuses_a_user_whose_name_cannot_be_a_site(platform_staff):
    before = everything()
    response = platform_staff.post(
        "/admin/auth/user/add/",
        {
            "username": "www",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "usable_password": "true",
        },
    )
    assert response.status_code == 200
    assert "reserved" in response.content.decode()
    assert everything() == before


def test_platform_admin_adds_a_tenant_through_the_service(platform_staff):
    owner = User.objects.create_user("pia", "pia@example.com", PASSWORD)
    response = platform_staff.post(
        "/admin/tenants/tenant/add/",
        {"name": "Pia's Pottery", "slug": "pottery", "domain": "", "owner": owner.pk},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    tenant = Tenant.objects.get(slug="pottery")
    assert tenant.primary_domain == "pottery.localhost"
    home = Client(HTTP_HOST="pottery.localhost").get("/")
    assert b"Pia&#x27;s Pottery is live" in home.content
    assert admin_login(Client(HTTP_HOST="pottery.localhost"), "pia").url == "/admin/"


def test_platform_admin_add_tenant_refuses_bad_names(platform_staff):
    before = everything()
    for slug, message in [("www", "reserved"), ("acme", "reserved"), ("Bad Name", "site name")]:
        response = platform_staff.post(
            "/admin/tenants/tenant/add/", {"name": "X", "slug": slug, "domain": ""}
        )
        assert response.status_code == 200
        assert message in response.content.decode()
    response = platform_staff.post(
        "/admin/tenants/tenant/add/", {"name": "X", "slug": "fine", "domain": "acme.localhost"}
    )
    assert "already serves another site" in response.content.decode()
    assert everything() == before
