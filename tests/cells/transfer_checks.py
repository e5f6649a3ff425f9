"""Export a tenant of cell eu1, import it into eu2 under a new slug (issue 17's acceptance),
checked on a cells fleet of either mode (tests/cells/test_cells.py, test_cells_row.py)."""

from __future__ import annotations

import json
import re
import zipfile

from tests.support.cells import CELLS, PASSWORD
from tests.support.postgres import postgres_rows
from tests.support.servers import Visitor, free_port, manage

ADD_PAGES = (
    "from home.models import PageContent; "
    "PageContent.objects.create(title='Carried page', body='Across cells: \\u00fc', ordering=1); "
    "PageContent.objects.create(title='Second page', body='Two of them', ordering=2)"
)


def pages_in(fleet, cell: str, slug: str) -> list[tuple]:
    """(id, title, body) of ``slug``'s pages in ``cell``, by SQL on that server."""
    rows = postgres_rows(
        fleet.control_url, "SELECT id, schema_name FROM tenants_tenant WHERE slug = %s", [slug]
    )
    if not rows:
        return []
    [(pk, schema)] = rows
    if fleet.env["TENANCY_MODE"] == "schema":
        if schema not in fleet.schemas(cell):
            return []
        query = f'SELECT id, title, body FROM "{schema}".home_pagecontent ORDER BY id'
        return postgres_rows(fleet.url(cell), query)
    query = "SELECT id, title, body FROM home_pagecontent WHERE tenant_id = %s ORDER BY id"
    return postgres_rows(fleet.url(cell), query, [pk])


def _same_look(text: str, host: str) -> str:
    """A page with its host and page ids taken out (row mode gives the copy new ids)."""
    return re.sub(r"/pages/\d+/", "/pages/N/", text.replace(host, "HOST"))


def export_then_import_into_another_cell(fleet, tmp_path, slug: str):
    new, owner = f"{slug}-copy", f"{slug}-owner"
    env = {**fleet.env, "TENANT_OWNER_PASSWORD": PASSWORD}
    manage(
        *("tenants", "create", "--name", f"{slug} site", "--slug", slug, "--cell", "eu1"),
        *("--owner", owner, "--owner-email", f"{owner}@example.com"),
        env=env,
    )
    fleet.manage("tenants", "run", "--tenant", slug, "--", "shell", "-c", ADD_PAGES)
    where = ("default", *CELLS)
    before = {cell: pages_in(fleet, cell, slug) for cell in where}
    assert before["eu1"] and not before["eu2"] and not before["default"], before
    archive = tmp_path / f"{slug}.zip"
    fleet.manage("tenants", "export", slug, str(archive))
    manifest = json.loads(zipfile.ZipFile(archive).read("manifest.json"))
    assert manifest["tables"]["home.pagecontent"]["rows"] == len(before["eu1"])

    _refusals(fleet, archive, new)
    done = fleet.manage(
        "tenants", "import", str(archive), "--slug", new, "--cell", "eu2", "-v", "2"
    )
    assert "checksums verified" in done.stdout and "cell: eu2" in done.stdout, done.stdout
    printed = dict(re.findall(r"^  (\S+): \d+ rows, sha256 (\w+)$", done.stdout, re.M))
    assert printed == {name: t["checksum"] for name, t in manifest["tables"].items()}
    assert fleet.tenants()[new][1] == "eu2"

    after = {cell: pages_in(fleet, cell, new) for cell in where}
    assert [r[1:] for r in after["eu2"]] == [r[1:] for r in before["eu1"]]
    assert not after["eu1"] and not after["default"], after  # on eu2 only
    assert {cell: pages_in(fleet, cell, slug) for cell in where} == before  # original untouched

    old_host, new_host = f"{slug}.localhost", f"{new}.localhost"
    paths = [("/", "/")] + [
        (f"/pages/{a[0]}/", f"/pages/{b[0]}/")
        for a, b in zip(before["eu1"], after["eu2"], strict=True)
    ]
    for old_path, new_path in paths:
        original, copy = fleet.server.get(old_host, old_path), fleet.server.get(new_host, new_path)
        assert original.status == copy.status == 200, (new_path, copy.status, copy.text[:300])
        assert _same_look(copy.text, new_host) == _same_look(original.text, old_host), new_path
    assert "Carried page" in copy.text or "Second page" in copy.text
    assert Visitor(fleet.server).login(new_host, owner, PASSWORD)
    assert Visitor(fleet.server).login(old_host, owner, PASSWORD)
    assert not Visitor(fleet.server).login(new_host, owner, PASSWORD + "x")  # a control


def _refusals(fleet, archive, new):
    """An unknown cell, or a configured one that does not answer: exit 1, nothing made."""
    refused = fleet.manage(
        "tenants", "import", str(archive), "--slug", new, "--cell", "nowhere", check=False
    )
    assert refused.returncode == 1 and "No cell 'nowhere'" in refused.stderr, refused.stderr
    both = ("--cell", "eu2", "--database", "cell_eu2")
    refused = fleet.manage("tenants", "import", str(archive), "--slug", new, *both, check=False)
    assert refused.returncode == 1 and "not both" in refused.stderr, refused.stderr
    down = f"eu9=postgres://postgres@127.0.0.1:{free_port()}/tenantsite"
    env = {**fleet.env, "TENANCY_CELLS": fleet.env["TENANCY_CELLS"] + "," + down}
    refused = manage(
        "tenants", "import", str(archive), "--slug", new, "--cell", "eu9", env=env, check=False
    )
    assert refused.returncode == 1 and "'eu9' is not reachable" in refused.stderr, refused.stderr
    assert new not in fleet.tenants()
