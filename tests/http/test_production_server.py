"""The production set-up (collectstatic + gunicorn + WhiteNoise) serves pages and static files."""

import re

import pytest

from tests.support.servers import manage, start_production_server


@pytest.fixture
def collected_server(django_db_setup, tmp_path):
    static_root = tmp_path / "static"
    env = {"STATIC_COLLECTED": "1", "STATIC_ROOT": str(static_root)}
    manage("collectstatic", "--no-input", "-v0", env=env)
    server = start_production_server(tmp_path, **env)
    yield server
    server.stop()


def test_pages_link_hashed_compressed_static_files_cached_for_a_year(collected_server):
    status, _, body = collected_server.get("acme.localhost", "/")
    assert status == 200 and b"Welcome to Acme Corporation" in body
    stylesheet = re.search(rb'href="(/static/home/site\.[0-9a-f]{12}\.css)"', body)
    assert stylesheet, "the page links the stylesheet by its hashed name"
    status, headers, css = collected_server.get("acme.localhost", stylesheet.group(1).decode())
    assert status == 200 and b"--brand" in css
    assert headers["Content-Type"].startswith("text/css")
    assert "max-age=315360000" in headers["Cache-Control"]
    status, headers, _ = collected_server.get(
        "acme.localhost", stylesheet.group(1).decode(), headers={"Accept-Encoding": "gzip"}
    )
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    status, _, _ = collected_server.get("acme.localhost", "/static/admin/css/base.css")
    assert status == 200


def test_missing_pages_are_404_pages_in_the_tenants_look(collected_server):
    status, _, body = collected_server.get("global.localhost", "/no-such-page/")
    assert status == 404
    assert b"Page not found" in body and b"on Global Services" in body
