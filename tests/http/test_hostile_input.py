"""Hostile input to every form and JSON endpoint is refused with a message, never a 500.

A small fuzz: each field of each endpoint gets each hostile value in turn (the other fields
valid), and the whole body gets the hostile shapes of its encoding (deep JSON nesting, lone
surrogates, bytes that are not UTF-8, a body over the size limit). The sign-up form and API
answer 400 with a message (or take a value that is merely odd, such as an emoji password);
log-in pages and the admin answer with their form and its errors, as Django does. None answers
500 (the test client re-raises a view's exception).
"""

import json
from urllib.parse import quote

import pytest
from django.core.cache import cache
from django.test import Client

from accounts.models import Membership
from home.models import PageContent
from tenants.runtime.context import tenant_context
from tests.support.members import PASSWORD, make_member, platform_superuser, signed_in

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"
LONG = "x" * 100_000
# Text a person could type or paste (valid UTF-8 on the wire); each field gets each.
HOSTILE_TEXT = [
    "a\x00b",  # NUL: PostgreSQL refuses it in text
    LONG,
    "\u202eevil\u202c",
    "🚀" * 300,
    "<script>alert(1)</script>",
    "   ",
    "9" * 60,  # past any integer column
    "-1",
    "1e309",
    "%s%s%n",
    "../../etc/passwd",
]
# Bytes that decode to nothing valid: a CESU-8 lone surrogate, and bytes that are not UTF-8.
HOSTILE_BYTES = [b"\xed\xa0\x80x", b"\xff\xfe", b"a\xc0\xaf"]
# JSON values: lone surrogates (valid JSON, not valid text), other types, deep nesting.
HOSTILE_JSON = [
    "\ud800",
    "x\udfffy",
    "a\x00b",
    LONG,
    None,
    12,
    1e308,
    True,
    [],
    {"a": "b"},
    [[[[["deep"]]]]],
]

SIGN_UP = {
    "username": "fuzz-user",
    "email": "fuzz@example.com",
    "password": "a-long-unusual-passphrase",
    "site_name": "Fuzz",
}


def form_body(fields: dict, hostile_field=None, raw: bytes = b"") -> bytes:
    """An urlencoded body; ``hostile_field``'s value is ``raw`` bytes, percent-encoded as is."""
    parts = []
    for name, value in fields.items():
        if name == hostile_field:
            parts.append(f"{name}={quote(raw)}")
        else:
            parts.append(f"{name}={quote(str(value))}")
    return "&".join(parts).encode()


def hostile_forms(fields: dict):
    """(label, body) for each field x each hostile value, urlencoded."""
    for field in fields:
        for value in HOSTILE_TEXT:
            yield f"{field}={value[:12]!r}", form_body({**fields, field: value})
        for raw in HOSTILE_BYTES:
            yield f"{field}={raw!r}", form_body(fields, field, raw)


def post_all(client, path, fields, ok):
    """POST every hostile variant of ``fields`` to ``path``; {label: status} of the misfits:
    a status not in ``ok``, or a refusal (not a redirect) without an error message."""
    misfits = {}
    for label, body in hostile_forms(fields):
        response = client.post(path, body, content_type=FORM)
        said = b"errorlist" in response.content or b"errornote" in response.content
        refused_silently = response.status_code != 302 and not said
        if response.status_code not in ok or refused_silently:
            misfits[label] = response.status_code
    return misfits


@pytest.fixture(autouse=True)
def _forget_cached_branding():
    """Branding saved by the admin fuzz is rolled back with the test; the copy the cache keeps
    for other requests of this process must go too."""
    yield
    cache.clear()


# --- Sign-up -----------------------------------------------------------------------------------


@pytest.fixture
def platform():
    return Client(HTTP_HOST="localhost")


def test_sign_up_api_refuses_hostile_values_in_every_field(platform):
    misfits = {}
    for field in SIGN_UP:
        for value in HOSTILE_JSON:
            body = json.dumps({**SIGN_UP, field: value})  # lone surrogates as \\ud800 escapes
            response = platform.post("/api/register/", body, content_type="application/json")
            if response.status_code not in (400, 201) or not response.json().get("message"):
                misfits[f"{field}={str(value)[:12]!r}"] = response.status_code
    assert misfits == {}


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"username": ' + "[" * 5_000 + "]" * 5_000 + "}",
        '{"username": "a", "password": "\\ud800\\udfff\\ud800"}',
        b"\xff\xfe{}",
        '{"username": 1' + "0" * 5_000 + "}",
        "null",
        '"text"',
        "{" * 3,
    ],
    ids=["deep-list", "deep-field", "surrogates", "not-utf8", "huge-int", "null", "string",
         "broken"],
)  # fmt: skip
def test_sign_up_api_refuses_hostile_bodies(platform, body):
    response = platform.post("/api/register/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["message"]


def test_sign_up_api_refuses_a_body_over_the_limit(platform, settings):
    body = json.dumps({**SIGN_UP, "site_name": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})
    response = platform.post("/api/register/", body, content_type="application/json")
    assert response.status_code == 400
    assert "too large" in response.json()["message"]


def test_sign_up_form_refuses_hostile_values_in_every_field(platform):
    assert post_all(platform, "/register/", SIGN_UP, ok=(400, 302)) == {}


def test_a_form_body_over_the_limit_is_400(platform, settings):
    body = form_body({**SIGN_UP, "site_name": "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE})
    assert platform.post("/register/", body, content_type=FORM).status_code == 400


# --- Log-in ------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "acme.localhost"])
@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_log_in_refuses_hostile_values_in_every_field(tenants, host, path):
    make_member(tenants["acme"], "fuzz-member")
    client = Client(HTTP_HOST=host)
    fields = {"username": "fuzz-member", "password": PASSWORD}
    assert post_all(client, path, fields, ok=(200,)) == {}
    assert "_auth_user_id" not in client.session


# --- The admin ---------------------------------------------------------------------------------


@pytest.fixture
def owner(tenants):
    make_member(tenants["acme"], "acme-owner")
    return signed_in("acme.localhost", "acme-owner")


@pytest.fixture
def root(tenants):
    return platform_superuser()


def tenant_admin_forms(tenants):
    with tenant_context(tenants["acme"]):
        page = PageContent.objects.first()
        membership = Membership.objects.get(user__username="acme-owner")
    page_form = {"title": "T", "body": "B", "ordering": 1, "published": "on"}
    return {
        "/admin/home/pagecontent/add/": page_form,
        f"/admin/home/pagecontent/{page.pk}/change/": page_form,
        "/admin/home/sitesettings/add/": {
            "site_name": "S",
            "tagline": "T",
            "brand_colour": "#123456",
            "logo_url": "https://example.com/logo.png",
        },
        f"/admin/accounts/membership/{membership.pk}/change/": {"role": "owner"},
        "/admin/password_change/": {
            "old_password": PASSWORD,
            "new_password1": "another-long-passphrase",
            "new_password2": "another-long-passphrase",
        },
    }


def test_the_tenant_admin_refuses_hostile_values_in_every_field(owner, tenants):
    misfits = {}
    for path, fields in tenant_admin_forms(tenants).items():
        for label, body in hostile_forms(fields):
            status = owner.post(path, body, content_type=FORM).status_code
            if status >= 500:
                misfits[f"{path} {label}"] = status
    assert misfits == {}
    with tenant_context(tenants["acme"]):
        assert not [t for t in PageContent.objects.values_list("title", flat=True) if "\x00" in t]


def test_the_platform_admin_refuses_hostile_values_in_every_field(root, tenants):
    forms = {
        "/admin/tenants/tenant/add/": {"name": "N", "slug": "fuzz-site", "domain": ""},
        "/admin/tenants/domain/add/": {"domain": "fuzz.example", "tenant": tenants["acme"].pk},
        "/admin/auth/user/add/": {
            "username": "fuzz-staff",
            "usable_password": "true",
            "password1": "another-long-passphrase",
            "password2": "another-long-passphrase",
        },
        "/admin/auth/group/add/": {"name": "G"},
    }
    misfits = {}
    for path, fields in forms.items():
        for label, body in hostile_forms(fields):
            status = root.post(path, body, content_type=FORM).status_code
            if status >= 500:
                misfits[f"{path} {label}"] = status
    assert misfits == {}


@pytest.mark.parametrize("query", ["a\x00b", LONG[:5000], "%", "' OR 1=1 --"])
def test_admin_search_and_filters_refuse_hostile_queries(owner, query):
    for params in ({"q": query}, {"published__exact": query}, {"o": query}, {"p": query}):
        assert owner.get("/admin/home/pagecontent/", params).status_code < 500
