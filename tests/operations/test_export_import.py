"""Export one tenant to an archive and import it under a new slug, in every mode.

A tenant with pages, page images, branding with a logo, an owner with a known password and an
editor is committed, exported with ``manage.py tenants export`` and imported with ``tenants
import --slug``; a real server then serves both sites, and the copy must look the same, let
its owner in, and share nothing with the original. Damaged archives and taken names are refused
with exit status 1 and leave nothing behind.
"""

import io
import json
import os
import zipfile
from pathlib import Path

import psycopg
import pytest
from django.conf import global_settings, settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import connection, connections
from PIL import Image

from accounts.models import Membership
from home.models import PageContent, SiteSettings
from tenants import media
from tenants.models import Tenant
from tenants.operations.transfer import (
    ArchiveError,
    export_tenant,
    import_tenant,
    remove_tenant_data,
)
from tenants.operations.transfer import restore as restore_module
from tenants.provisioning.services import create_tenant
from tenants.runtime import resolution
from tenants.runtime.context import no_tenant, scopes_disabled, tenant_context
from tests.support.members import PASSWORD, make_member, signed_in
from tests.support.modes import SCHEMA_MODE
from tests.support.postgres import create_database, database_url, drop_database
from tests.support.servers import Visitor, manage, on_test_database, start_production_server

SOURCE, COPY, OWNER, EDITOR = "exp-src", "exp-copy", "exp-owner", "exp-editor"


def _png(colour: str) -> bytes:
    data = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(data, "PNG")
    return data.getvalue()


def _tenants(*slugs):
    with no_tenant():
        return {t.slug: t for t in Tenant.objects.filter(slug__in=slugs)}


def _remove(slug):
    """A committed tenant of these tests: its schema or rows, domains and files."""
    for tenant in _tenants(slug).values():
        tenant_id = tenant.pk
        with scopes_disabled():
            tenant.delete(force_drop=True)
        media.remove_tenant_media(tenant_id)


def _state():
    """What an import could leave behind: tenants, users, schemas, media folders."""
    with no_tenant():
        tenants = sorted(Tenant.objects.values_list("slug", flat=True))
        users = sorted(get_user_model().objects.values_list("username", flat=True))
    schemas = []
    if SCHEMA_MODE:
        with connection.cursor() as cursor:
            cursor.execute("SELECT nspname FROM pg_namespace ORDER BY 1")
            schemas = [row[0] for row in cursor.fetchall()]
    folder = Path(settings.MEDIA_ROOT) / "tenants"
    files = sorted(str(p) for p in folder.rglob("*")) if folder.exists() else []
    return tenants, users, schemas, files


@pytest.fixture(scope="module")
def source(django_db_setup, django_db_blocker):
    """The committed tenant to export, with its owner and editor; removed afterwards with
    every tenant these tests imported."""
    with django_db_blocker.unblock():
        with no_tenant():
            owner = get_user_model()(username=OWNER, email=f"{OWNER}@example.com")
            owner.set_password(PASSWORD)
            owner.provision_site = False
            owner.save()
        tenant = create_tenant(
            name="Export Source", slug=SOURCE, domain=f"{SOURCE}.localhost", owner=owner
        ).tenant
        make_member(tenant, EDITOR, role=Membership.Role.EDITOR)
        with tenant_context(tenant):
            for n, colour in enumerate(["red", "green", "blue"]):
                PageContent.objects.create(
                    title=f"Exported page {n}",
                    body=f"Body {n} with ünïcode",
                    ordering=n,
                    image=ContentFile(_png(colour), name=f"p{n}.png"),
                    image_alt=f"a {colour} square",
                )
            PageContent.objects.create(title="Draft", published=False)
            SiteSettings.objects.create(
                site_name="Exported Site",
                tagline="Carried whole",
                brand_colour="#7a1f5c",
                logo=ContentFile(_png("#7a1f5c"), name="logo.png"),
            )
        yield tenant
        for slug in (SOURCE, COPY, "exp-twice", "exp-renamed"):
            _remove(slug)
        with no_tenant(), scopes_disabled():
            get_user_model().objects.filter(username__startswith="exp-").delete()


@pytest.fixture(scope="module")
def archive(source, tmp_path_factory):
    path = tmp_path_factory.mktemp("archives") / "source.zip"
    done = manage("tenants", "export", SOURCE, str(path), env=on_test_database())
    assert f"Exported {SOURCE}" in done.stdout
    return path


@pytest.fixture(scope="module")
def imported(archive):
    """The archive imported as COPY by the command; yields its output."""
    done = manage(
        "tenants", "import", str(archive), "--slug", COPY, "-v", "2", env=on_test_database()
    )
    return done.stdout


def _manifest(path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("manifest.json"))


def _rewrite(path, target, change):
    """A copy of archive ``path`` at ``target`` with ``change(name, data) -> data | None``
    applied to each member (None: the member is left out); CRCs are recomputed, as a person
    editing the archive with a zip tool would get."""
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            data = change(item.filename, old.read(item.filename))
            if data is not None:
                new.writestr(item.filename, data)
    return target


def _same_pages(old, new):
    """(original's id, copy's id) of each published page, matched by title."""
    with tenant_context(old):
        old_ids = dict(PageContent.objects.filter(published=True).values_list("title", "pk"))
    with tenant_context(new):
        new_ids = dict(PageContent.objects.filter(published=True).values_list("title", "pk"))
    return [(old_ids[title], new_ids[title]) for title in sorted(old_ids) if title in new_ids]


def test_the_archive_lists_everything_it_carries(archive, source):
    manifest = _manifest(archive)
    assert manifest["format_version"] == 1
    assert manifest["mode"] == ("schema" if SCHEMA_MODE else "row")
    assert manifest["source"]["slug"] == SOURCE
    assert manifest["owner"]["username"] == OWNER
    tables = manifest["tables"]
    assert tables["home.pagecontent"]["rows"] == 4
    assert tables["home.sitesettings"]["rows"] == 1
    assert tables["accounts.membership"]["rows"] == 2
    assert tables["auth.user"]["rows"] == 2  # the owner and the editor, nobody else
    assert len(manifest["media"]) == 4  # three page images and the logo
    assert any(m.startswith("home.0") for m in manifest["migrations"])


def test_the_copy_verifies_against_the_exports_checksums(archive, imported):
    manifest = _manifest(archive)
    assert "checksums verified" in imported
    for label, info in manifest["tables"].items():
        assert f"  {label}: {info['rows']} rows, sha256 {info['checksum']}" in imported


def test_the_copy_serves_the_same_site_and_lets_its_owner_in(
    archive, imported, tmp_path, committed_db
):
    tenants = _tenants(SOURCE, COPY)
    old, new = tenants[SOURCE], tenants[COPY]
    assert new.pk != old.pk and new.primary_domain == f"{COPY}.localhost"
    server = start_production_server(tmp_path)
    try:
        original = server.get(f"{SOURCE}.localhost", "/")
        copy = server.get(f"{COPY}.localhost", "/")
        assert original.status == copy.status == 200
        assert "Exported page 2" in copy.text and "Carried whole" in copy.text
        old_prefix, new_prefix = media.tenant_prefix(old.pk), media.tenant_prefix(new.pk)
        expected = original.text.replace(old_prefix, new_prefix)
        for old_pk, new_pk in _same_pages(old, new):
            expected = expected.replace(f"/pages/{old_pk}/", f"/pages/{new_pk}/")
            old_page = server.get(f"{SOURCE}.localhost", f"/pages/{old_pk}/")
            new_page = server.get(f"{COPY}.localhost", f"/pages/{new_pk}/")
            assert new_page.status == 200
            assert new_page.text == old_page.text.replace(old_prefix, new_prefix).replace(
                f"/pages/{old_pk}/", f"/pages/{new_pk}/"
            )
            if old_pk != new_pk:  # row mode: the original's page id is not the copy's
                assert server.get(f"{COPY}.localhost", f"/pages/{old_pk}/").status == 404
        assert copy.text == expected
        with tenant_context(new):
            names = [p.image.name for p in PageContent.objects.exclude(image="")]
            logo = SiteSettings.objects.get().logo.name
        for name in [*names, logo]:
            assert name.startswith(new_prefix)
            served = server.get(f"{COPY}.localhost", f"/media/{name}")
            assert served.status == 200
            assert (
                served.body
                == server.get(
                    f"{SOURCE}.localhost", "/media/" + name.replace(new_prefix, old_prefix)
                ).body
            )
            # The copy's files are not served on the original's host, nor the other way round.
            assert server.get(f"{SOURCE}.localhost", f"/media/{name}").status == 404
        assert Visitor(server).login(f"{COPY}.localhost", OWNER, PASSWORD)
        assert Visitor(server).login(f"{COPY}.localhost", EDITOR, PASSWORD)
        assert not Visitor(server).login(f"{COPY}.localhost", OWNER, "not the password")
    finally:
        server.stop()
    with no_tenant():
        assert Tenant.objects.get(slug=COPY).owner.username == OWNER


def test_the_original_is_untouched_and_the_two_share_nothing(
    archive, imported, tmp_path, committed_db
):
    tenants = _tenants(SOURCE, COPY)
    old, new = tenants[SOURCE], tenants[COPY]
    again = tmp_path / "again.zip"
    export_tenant(old, again)
    assert _manifest(again)["tables"] == _manifest(archive)["tables"]
    with tenant_context(old):
        old_pages = dict(PageContent.objects.values_list("pk", "title"))
    with tenant_context(new):
        new_pages = dict(PageContent.objects.values_list("pk", "title"))
        assert sorted(new_pages.values()) == sorted(old_pages.values())
        if not SCHEMA_MODE:  # shared tables: every row got an id of its own
            assert not set(new_pages) & set(old_pages)
            assert not PageContent.objects.filter(pk__in=list(old_pages)).exists()
        # Schema mode kept the ids: this needs the sequences set past them.
        added = PageContent.objects.create(title="Only on the copy")
    try:
        with tenant_context(old):
            assert not PageContent.objects.filter(title="Only on the copy").exists()
            PageContent.objects.filter(title="Exported page 0").update(
                title="Changed on the original"
            )
        with tenant_context(new):
            assert PageContent.objects.filter(title="Exported page 0").exists()
            assert not PageContent.objects.filter(title="Changed on the original").exists()
    finally:
        with tenant_context(old):
            PageContent.objects.filter(title="Changed on the original").update(
                title="Exported page 0"
            )
        with tenant_context(new):
            added.delete()


def test_importing_the_same_slug_twice_is_refused(archive, imported, committed_db):
    before = _state()
    again = manage(
        "tenants", "import", str(archive), "--slug", COPY, env=on_test_database(), check=False
    )
    assert again.returncode == 1
    assert f"Cannot import as '{COPY}'" in again.stderr and "taken" in again.stderr
    assert "Traceback" not in again.stderr
    # Without --slug: the source's own slug, which is taken too.
    same = manage("tenants", "import", str(archive), env=on_test_database(), check=False)
    assert same.returncode == 1 and "taken" in same.stderr
    assert _state() == before


@pytest.mark.parametrize("damage", ["changed row", "removed file", "truncated", "not an archive"])
def test_a_damaged_archive_is_refused_and_leaves_nothing(
    archive, imported, tmp_path, damage, committed_db
):
    target = tmp_path / "damaged.zip"
    if damage == "changed row":

        def change(name, data):
            return (
                data.replace(b"Exported page 1", b"Exported page X")
                if "pagecontent" in name
                else data
            )

        _rewrite(archive, target, change)
    elif damage == "removed file":
        first = sorted(_manifest(archive)["media"])[0]
        _rewrite(archive, target, lambda name, data: None if name == f"media/{first}" else data)
    elif damage == "truncated":
        data = archive.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    else:
        target.write_bytes(b"PK\x03\x04 not really")
    before = _state()
    done = manage(
        "tenants",
        "import",
        str(target),
        "--slug",
        "exp-damaged",
        env=on_test_database(),
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "damaged" in done.stderr or "Verification failed" in done.stderr, done.stderr
    assert _state() == before


def test_a_failure_after_writing_rows_and_files_rolls_everything_back(
    archive, imported, committed_db, monkeypatch
):
    """Verification of what was written fails (as if the database had changed a row): the
    tenant, its schema or rows, the accounts made and the files stored are all gone."""
    before = _state()
    real = restore_module._Restorer._to_archive

    def altered(self, table, row, inverse):
        values = list(real(self, table, row, inverse))
        if table.model is PageContent:
            values[table.index("title")] += " (altered)"
        return tuple(values)

    monkeypatch.setattr(restore_module._Restorer, "_to_archive", altered)
    with pytest.raises(ArchiveError, match="Verification failed: home.pagecontent"):
        import_tenant(archive, slug="exp-rolled-back", rename_users=True)
    assert _state() == before


def test_a_strangers_username_is_never_taken_over(archive, imported, committed_db):
    """The platform's OWNER is someone else now (another password): refused, or renamed."""
    User = get_user_model()
    with no_tenant():
        owner = User.objects.get(username=OWNER)
        kept = owner.password
        owner.set_password("someone else's password")
        owner.save()
    try:
        before = _state()
        with pytest.raises(ArchiveError, match=f"{OWNER}.*belong to other accounts"):
            import_tenant(archive, slug="exp-twice")
        assert _state() == before
        done = import_tenant(archive, slug="exp-renamed", rename_users=True)
        renamed = f"{OWNER}-exp-renamed"
        assert done.users_renamed[OWNER] == renamed
        with no_tenant():
            assert Tenant.objects.get(slug="exp-renamed").owner.username == renamed
            assert User.objects.get(username=OWNER).check_password("someone else's password")
        with tenant_context(done.tenant):
            member = Membership.objects.get(role=Membership.Role.OWNER).user
            # Schema mode: the site's own copy of the account, in its new schema, keeps its name.
            assert member.username == (OWNER if SCHEMA_MODE else renamed)
            assert member.password == kept  # the archive's password hash
    finally:
        with no_tenant():
            User.objects.filter(username=OWNER).update(password=kept)


def test_the_import_says_where_each_archived_row_went(archive, imported, committed_db):
    """``Imported.ids``: archive id -> the copy's id of every row (new ids in row mode)."""
    done = import_tenant(archive, slug="exp-ids", rename_users=True)
    try:

        def pages(tenant):
            with tenant_context(tenant):
                return {p.pk: (p.title, p.body, p.ordering) for p in PageContent.objects.all()}

        old, new = pages(_tenants(SOURCE)[SOURCE]), pages(done.tenant)
        ids = done.ids["home.pagecontent"]
        assert old and set(ids) == set(old)
        assert {ids[old_id]: row for old_id, row in old.items()} == new
        if SCHEMA_MODE:
            assert all(old_id == new_id for old_id, new_id in ids.items())
        else:
            assert not set(ids.values()) & set(ids)
        assert set(done.ids) == set(done.tables)
    finally:
        _remove("exp-ids")


# --- A move between two databases, without the cells machinery ------------------------------------


@pytest.fixture
def second_database(committed_db, tmp_path):
    """Database alias ``cell2``: a second database on the same server (SQLite: a second file),
    migrated by the same code, used by the site's own role like ``default``."""
    conf = dict(connections.settings["default"])
    if connection.vendor == "sqlite":
        conf["NAME"] = str(tmp_path / "cell2.sqlite3")
        url = f"sqlite:///{conf['NAME']}"
    else:
        conf["NAME"] = f"{connection.settings_dict['NAME']}_cell2"
        url = database_url(conf["NAME"])
        create_database(url)
    manage("migrate", "-v0", env=on_test_database(DATABASE_URL=url, DATABASE_APP_URL=""))
    connections.settings["cell2"] = conf
    try:
        yield "cell2", url
    finally:
        connections["cell2"].close()
        del connections["cell2"]
        del connections.settings["cell2"]
        if connection.vendor != "sqlite":
            drop_database(url)


def _empty_schema_in(url, schema):
    """What the cells' schema factory will do: the tenant's schema, migrated and empty."""
    from tenants.provisioning import bulk

    script = bulk.build_blueprint().sql_for(schema)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(script)


def test_a_move_keeps_the_tenant_and_leaves_no_copy_behind(
    archive, imported, second_database, tmp_path
):
    """export_tenant from ``default``, import_tenant(keep_identity=True) into ``cell2``, then
    remove_tenant_data from ``default``: the same tenant (id, slug, files) with its data in
    cell2 only; the original site untouched."""
    alias, url = second_database
    tenant = _tenants(COPY)[COPY]
    with tenant_context(tenant):
        titles = sorted(PageContent.objects.values_list("title", flat=True))
    files = media.tenant_files(tenant.pk)
    export_tenant(tenant, tmp_path / "move.zip")
    if SCHEMA_MODE:
        with pytest.raises(ArchiveError, match="Make the empty schema"):
            import_tenant(tmp_path / "move.zip", keep_identity=True, using=alias)
        _empty_schema_in(url, tenant.schema_name)
    done = import_tenant(tmp_path / "move.zip", keep_identity=True, using=alias)
    assert done.tenant.pk == tenant.pk and done.files == 0  # the files are already there
    with pytest.raises(ArchiveError, match="already has"):
        import_tenant(tmp_path / "move.zip", keep_identity=True, using=alias)
    remove_tenant_data(tenant, using="default")
    with tenant_context(tenant):
        assert sorted(PageContent.objects.using(alias).values_list("title", flat=True)) == titles
        assert SiteSettings.objects.using(alias).get().tagline == "Carried whole"
        if not SCHEMA_MODE:
            assert not PageContent.objects.exists()
            assert not Membership.objects.exists()
    if SCHEMA_MODE:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [tenant.schema_name])
            assert cursor.fetchone() is None
    assert media.tenant_files(tenant.pk) == files  # shared by both databases: kept
    again = tmp_path / "source-again.zip"
    export_tenant(_tenants(SOURCE)[SOURCE], again)
    assert _manifest(again)["tables"] == _manifest(archive)["tables"]


# --- Between the modes --------------------------------------------------------------------------

SIGN_UP = f"""
from django.contrib.auth import get_user_model
user = get_user_model()(username="xmode-owner", email="xmode@example.com")
user.set_password("{PASSWORD}")
user.save()  # provisions the site xmode-owner: starter pages, the owner's access
"""


@pytest.fixture
def other_mode_archive(committed_db, tmp_path):
    """An archive made by the other mode: a signed-up site of a row-mode SQLite database in
    the schema-mode pass, of a schema-mode PostgreSQL database in the row-mode passes."""
    if SCHEMA_MODE:
        env = {"TENANCY_MODE": "row", "DATABASE_URL": f"sqlite:///{tmp_path / 'row.sqlite3'}"}
    else:
        server = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/x")
        name = Path(str(connection.settings_dict["NAME"])).stem.replace("-", "_") + "_schema"
        env = {"TENANCY_MODE": "schema", "DATABASE_URL": f"{server.rsplit('/', 1)[0]}/{name}"}
        create_database(env["DATABASE_URL"])
    env |= {"TENANCY_ROW_LEVEL_SECURITY": "false", "MEDIA_ROOT": str(tmp_path / "media")}
    try:
        manage("migrate", "-v0", env=env)
        manage("shell", "-c", SIGN_UP, env=env)
        manage("tenants", "export", "xmode-owner", str(tmp_path / "xmode.zip"), env=env)
        yield tmp_path / "xmode.zip"
    finally:
        if not SCHEMA_MODE:
            drop_database(env["DATABASE_URL"])
        _remove("xmode-in")
        with no_tenant(), scopes_disabled():
            get_user_model().objects.filter(username="xmode-owner").delete()


def test_an_archive_of_the_other_mode_imports(other_mode_archive, settings):
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS  # the other process's hash
    assert _manifest(other_mode_archive)["mode"] == ("row" if SCHEMA_MODE else "schema")
    done = import_tenant(other_mode_archive, slug="xmode-in")
    assert done.tables["home.pagecontent"]["rows"] == 3  # the starter pages
    with tenant_context(done.tenant):
        assert PageContent.objects.count() == 3
        assert Membership.objects.get().user.username == "xmode-owner"
    with no_tenant():
        assert done.tenant.owner.username == "xmode-owner"
    resolution.invalidate()
    signed_in("xmode-in.localhost", "xmode-owner")  # asserts the owner gets in


def test_exports_that_cannot_be_made_are_clear_errors(source, committed_db, tmp_path):
    cases = [
        (["nosuch", str(tmp_path / "a.zip")], "No tenant 'nosuch'"),
        ([SOURCE, str(tmp_path / "missing" / "a.zip")], "No folder"),
        (["default", str(tmp_path / "a.zip")], "platform's own site"),
    ]
    for args, message in cases:
        done = manage("tenants", "export", *args, env=on_test_database(), check=False)
        assert done.returncode == 1 and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # no archive, not even a half-written one
