"""Uploads: a site owner's logo and page images, stored under the tenant's id, served on its own
host only, validated by content, counted against a quota, removed with the tenant."""

import io
import os

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from home.models import PageContent, SiteSettings
from tenants import media
from tenants.models import Tenant
from tenants.operations.lifecycle import delete_tenant, rename_slug
from tenants.provisioning.services import create_tenant
from tenants.runtime import resolution
from tenants.runtime.context import tenant_context
from tests.support.members import admin_login, make_member

ADD_LOGO = "/admin/home/sitesettings/add/"


def image_file(name="logo.png", fmt="PNG", size=(12, 8), noise=False):
    data = io.BytesIO()
    pixels = Image.effect_noise(size, 80).convert("RGB") if noise else Image.new("RGB", size, "red")
    pixels.save(data, fmt)
    data.name = name
    data.seek(0)
    return data


def stored_under(tenant) -> list[str]:
    return sorted(media._files_under(media.tenant_prefix(tenant.pk)))


@pytest.fixture
def owner(tenants, host_client):
    """An owner of acme, logged in to its admin."""
    make_member(tenants["acme"], "uploader")
    client = host_client("acme.localhost")
    admin_login(client, "uploader")
    return client


def upload_logo(client, file):
    return client.post(ADD_LOGO, {"brand_colour": "#123456", "logo": file})


def acme_logo(tenants):
    with tenant_context(tenants["acme"]):
        return SiteSettings.objects.get().logo


def test_logo_uploaded_on_a_is_served_on_a_only(owner, tenants, host_client):
    response = upload_logo(owner, image_file("My Logo.PNG"))
    assert response.status_code == 302, response.content
    logo = acme_logo(tenants)
    assert logo.name.startswith(f"tenants/{tenants['acme'].pk}/logos/")
    assert logo.name.endswith(".png") and "My Logo" not in logo.name
    url = logo.url
    assert url == f"/media/{logo.name}"

    served = host_client("acme.localhost").get(url)
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert b"".join(served.streaming_content) == default_storage.open(logo.name).read()
    assert f'src="{url}"' in host_client("acme.localhost").get("/").content.decode()
    # The same path on another tenant's host, on the platform's, on an unknown host: 404.
    for host in ("global.localhost", "localhost", "unknown.example"):
        assert host_client(host).get(url).status_code == 404, host
    # A logged-in owner's session does not help on another host either.
    owner.defaults["HTTP_HOST"] = "global.localhost"
    assert owner.get(url).status_code == 404


def test_an_uploaded_logo_is_the_sites_icon_on_its_host_only(owner, tenants, host_client):
    assert upload_logo(owner, image_file()).status_code == 302
    url = acme_logo(tenants).url
    icon = host_client("acme.localhost").get("/favicon.ico")
    assert icon.status_code == 302 and icon["Location"] == url
    assert (
        f'<link rel="icon" href="{url}">' in host_client("acme.localhost").get("/").content.decode()
    )
    assert url not in host_client("global.localhost").get("/favicon.ico")["Location"]


def test_names_outside_the_hosts_own_prefix_are_not_found(owner, tenants, host_client):
    upload_logo(owner, image_file())
    name = acme_logo(tenants).name
    acme, other = tenants["acme"].pk, tenants["global"].pk
    client = host_client("global.localhost")
    rest = name.split("/", 2)[2]
    for path in (
        f"/media/tenants/{other}/../{acme}/{rest}",
        f"/media/tenants/{other}/%2e%2e/{acme}/{rest}",
        f"/media/tenants/{other}//../../tenants/{acme}/{rest}",
        f"/media/tenants/{acme}/{rest}",
        f"/media/tenants/{other}/{rest}",
    ):
        assert client.get(path).status_code == 404, path
    assert host_client("acme.localhost").post(f"/media/{name}").status_code == 405


def test_page_image_is_shown_on_its_page(owner, tenants, host_client):
    with tenant_context(tenants["acme"]):
        page = PageContent.objects.first()
    change = f"/admin/home/pagecontent/{page.pk}/change/"
    response = owner.post(
        change,
        {
            "title": page.title,
            "body": page.body,
            "image": image_file("photo.jpeg", "JPEG"),
            "image_alt": "A red square",
            "ordering": page.ordering,
            "published": "on",
        },
    )
    assert response.status_code == 302, response.content
    with tenant_context(tenants["acme"]):
        page.refresh_from_db()
    assert page.image.name.startswith(f"tenants/{tenants['acme'].pk}/pages/")
    assert page.image.name.endswith(".jpg")
    html = host_client("acme.localhost").get(page.get_absolute_url()).content.decode()
    assert f'<img class="page-image" src="{page.image.url}" alt="A red square">' in html
    assert host_client("acme.localhost").get(page.image.url).status_code == 200
    assert host_client("techinnov.localhost").get(page.image.url).status_code == 404


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (lambda: io.BytesIO(b"%PDF-1.4 not an image at all"), "Upload a valid image"),
        (lambda: image_file("logo.png", "BMP"), "Use a PNG, JPEG, GIF or WebP image"),
        (lambda: image_file("big.png", size=(300, 300), noise=True), "can be at most 100"),
    ],
    ids=["not-an-image-named-png", "bmp-named-png", "oversized"],
)
def test_refused_uploads_give_a_form_error_and_store_nothing(
    owner, tenants, settings, upload, message
):
    settings.MEDIA_MAX_UPLOAD_MB = 100 / 1024  # 100 KB
    file = upload()
    file.name = "logo.png"
    response = upload_logo(owner, file)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert 'class="errorlist' in response.content.decode()
    with tenant_context(tenants["acme"]):
        assert not SiteSettings.objects.exists()
    assert stored_under(tenants["acme"]) == []


def test_an_upload_past_the_quota_is_refused(owner, tenants, settings):
    settings.MEDIA_TENANT_QUOTA_MB = 0.01  # about 10 KB
    # Already stored for acme: 8 KB. Another tenant's files do not count.
    prefix = media.tenant_prefix(tenants["acme"].pk)
    default_storage.save(f"{prefix}pages/old.bin", io.BytesIO(b"x" * 8192))
    default_storage.save(
        f"{media.tenant_prefix(tenants['global'].pk)}pages/x.bin", io.BytesIO(b"x" * 9000)
    )
    try:
        with tenant_context(tenants["acme"]):
            assert media.usage(tenants["acme"].pk) == 8192
        big = image_file(size=(60, 60), noise=True)
        assert 2300 < big.getbuffer().nbytes < 100_000
        response = upload_logo(owner, big)
        assert response.status_code == 200
        page = response.content.decode()
        assert "This site&#x27;s storage is full: 8.0 KB of 10.2 KB used, and this file" in page
        assert stored_under(tenants["acme"]) == [f"{prefix}pages/old.bin"]
        # A small one still fits.
        assert upload_logo(owner, image_file(size=(4, 4))).status_code == 302
    finally:
        default_storage.delete(f"{prefix}pages/old.bin")


def test_replaced_and_cleared_files_are_removed_after_the_commit(
    owner, tenants, django_capture_on_commit_callbacks
):
    upload_logo(owner, image_file())
    first = acme_logo(tenants).name
    with tenant_context(tenants["acme"]):
        settings_pk = SiteSettings.objects.get().pk
    change = f"/admin/home/sitesettings/{settings_pk}/change/"
    with django_capture_on_commit_callbacks(execute=True):
        owner.post(change, {"brand_colour": "#123456", "logo": image_file("new.gif", "GIF")})
    second = acme_logo(tenants).name
    assert second.endswith(".gif") and second != first
    assert stored_under(tenants["acme"]) == [second]
    with django_capture_on_commit_callbacks(execute=True):
        owner.post(change, {"brand_colour": "#123456", "logo-clear": "on"})
    assert stored_under(tenants["acme"]) == []


def test_renaming_a_tenant_keeps_its_files(owner, tenants, host_client):
    upload_logo(owner, image_file())
    url = acme_logo(tenants).url
    rename_slug(Tenant.objects.get(slug="acme"), "acme-renamed")
    resolution.invalidate()  # done on commit; the test's transaction never commits
    assert host_client("acme-renamed.localhost").get(url).status_code == 200
    assert host_client("acme.localhost").get(url).status_code == 404  # that host is gone


def new_tenant_with_a_file(slug):
    tenant = create_tenant(name=slug, slug=slug, domain=f"{slug}.localhost").tenant
    with tenant_context(tenant):
        page = PageContent(title="with an image")
        page.image.save("x.png", image_file(), save=True)
    assert len(stored_under(tenant)) == 1
    return tenant


def test_deleting_a_tenant_removes_its_files(tenants, django_capture_on_commit_callbacks):
    tenant = new_tenant_with_a_file("gone-soon")
    with django_capture_on_commit_callbacks(execute=True):
        done = delete_tenant(tenant, drop_schema=True)
    assert f"removed its uploaded files (tenants/{tenant.pk}/)" in done
    assert stored_under(tenant) == []
    assert not os.path.exists(default_storage.path(media.tenant_prefix(tenant.pk)))


@pytest.mark.schema_only
def test_deleting_a_tenant_but_keeping_its_schema_keeps_its_files(
    tenants, django_capture_on_commit_callbacks
):
    tenant = new_tenant_with_a_file("archived-soon")
    with django_capture_on_commit_callbacks(execute=True):
        done = delete_tenant(tenant, drop_schema=False)
    assert any(
        line.startswith(f"kept its uploaded files under tenants/{tenant.pk}/") for line in done
    )
    assert len(stored_under(tenant)) == 1
    media.remove_tenant_media(tenant.pk)


def test_x_accel_serving_hands_the_checked_file_to_nginx(owner, tenants, host_client, settings):
    upload_logo(owner, image_file())
    name = acme_logo(tenants).name
    settings.MEDIA_SERVING = "x-accel"
    response = host_client("acme.localhost").get(f"/media/{name}")
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/protected-media/{name}"
    assert response.content == b""
    assert host_client("global.localhost").get(f"/media/{name}").status_code == 404


def test_an_upload_needs_a_tenant(db):
    from tenants.runtime.scoping import TenantRequired

    with pytest.raises(TenantRequired):
        media.TenantUploadTo("logos")(SiteSettings(), "x.png")


@pytest.fixture(autouse=True)
def _no_files_left(tenants):
    yield
    for tenant in Tenant.objects.all():
        media.remove_tenant_media(tenant.pk)
