"""Cells in row mode (docs/cells.md#row-mode), on PostgreSQL with row-level security: each
tenant's content rows live in its cell, read and written there by the application role under
the cell's own policies; memberships and platform accounts stay on the control database.

The same two private clusters as tests/cells/test_cells.py, a control database of this test,
a real server process with ``TENANCY_CELLS``.
"""

from __future__ import annotations

import json
import time

import pytest
from django.conf import settings

from tenants import seal
from tests.cells.test_cells import sign_up
from tests.support.cells import CELLS, PASSWORD, Fleet, cell_fleet
from tests.support.demo import DEMO_HOSTS, DEMO_TITLES
from tests.support.postgres import postgres_rows
from tests.support.servers import Visitor, manage

pytestmark = pytest.mark.skipif(
    settings.TENANCY_MODE != "row" or not settings.TENANCY_ROW_LEVEL_SECURITY,
    reason="row mode with row-level security on PostgreSQL (the SQLite pass has no cells; "
    "schema mode: test_cells.py)",
)


class RowFleet(Fleet):
    def tenant_ids(self) -> dict[str, tuple[int, str]]:
        rows = postgres_rows(self.control_url, "SELECT slug, id, cell FROM tenants_tenant")
        return {slug: (pk, cell or "default") for slug, pk, cell in rows}

    def pages(self, cell: str, tenant_id: int) -> int:
        query = "SELECT count(*) FROM home_pagecontent WHERE tenant_id = %s"
        return postgres_rows(self.url(cell), query, [tenant_id])[0][0]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    media = tmp_path_factory.mktemp("media")
    with cell_fleet("cells_row", media, mode="row", fleet_class=RowFleet) as fleet:
        yield fleet


def assert_rows_only_in_cell(fleet, slug) -> str:
    pk, cell = fleet.tenant_ids()[slug]
    for other in ("default", *CELLS):
        count = fleet.pages(other, pk)
        assert (count > 0) == (other == cell), f"{slug}: {count} pages in {other}"
    return cell


def test_demo_tenants_rows_live_in_their_cell_and_serve_from_it(fleet):
    cells = {
        slug: assert_rows_only_in_cell(fleet, slug) for slug in DEMO_HOSTS if slug != "default"
    }
    assert set(cells.values()) == set(CELLS)
    for slug, host in DEMO_HOSTS.items():
        answer = fleet.server.get(host)
        assert answer.status == 200 and DEMO_TITLES[slug] in answer.text, slug


def test_the_cells_tables_are_under_row_level_security_for_the_application_role(fleet):
    for cell in CELLS:
        rows = postgres_rows(
            fleet.url(cell),
            "SELECT relrowsecurity AND relforcerowsecurity, "
            "has_table_privilege('tenantsite_app', oid, 'SELECT') "
            "FROM pg_class WHERE relname = 'home_pagecontent'",
        )
        assert rows == [(True, True)], cell


def test_a_signed_up_site_keeps_its_pages_in_its_cell_and_its_owner_edits_them(fleet):
    answer = sign_up(fleet, "rowsigner")
    assert answer.status == 201, answer.text
    cell = assert_rows_only_in_cell(fleet, "rowsigner")
    assert cell in CELLS
    pk, _ = fleet.tenant_ids()["rowsigner"]
    # Access is platform data: the membership is on the control database.
    memberships = postgres_rows(
        fleet.control_url, "SELECT count(*) FROM accounts_membership WHERE tenant_id = %s", [pk]
    )
    assert memberships == [(1,)]
    visitor = Visitor(fleet.server)
    assert visitor.login("rowsigner.localhost", "rowsigner", PASSWORD)
    pages = visitor.request("rowsigner.localhost", "/admin/home/pagecontent/")
    assert pages.status == 200
    [(title,)] = postgres_rows(
        fleet.url(cell),
        "SELECT title FROM home_pagecontent WHERE tenant_id = %s ORDER BY id LIMIT 1",
        [pk],
    )
    assert title in pages.text


def test_a_tenant_of_one_cell_never_sees_another_cells_rows(fleet):
    ids = fleet.tenant_ids()
    one = next(s for s in DEMO_HOSTS if ids[s][1] == "eu1")
    two = next(s for s in DEMO_HOSTS if ids[s][1] == "eu2")
    other_pages = postgres_rows(
        fleet.url("eu2"), "SELECT id FROM home_pagecontent WHERE tenant_id = %s", [ids[two][0]]
    )
    for (page_id,) in other_pages:
        answer = fleet.server.get(DEMO_HOSTS[one], f"/pages/{page_id}/")
        assert DEMO_TITLES[two] not in answer.text
    visitor = Visitor(fleet.server)
    assert visitor.login("rowsigner.localhost", "rowsigner", PASSWORD)
    thief = Visitor(fleet.server)
    thief.cookies[DEMO_HOSTS[two]] = dict(visitor.cookies["rowsigner.localhost"])
    answer = thief.request(DEMO_HOSTS[two], "/admin/")
    assert answer.status == 302 and "/admin/login/" in answer.headers["Location"]


PROBE = """
from django.db import connections
from tenants.cells import TenantOnAnotherCell
from tenants.models import Tenant
from tenants.runtime.context import scopes_disabled, tenant_context

tenant = Tenant.objects.get(slug={slug!r})
with tenant_context(tenant), scopes_disabled():
    for alias in ("default", "cell_eu1", "cell_eu2"):
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT count(*), count(DISTINCT tenant_id) FROM home_pagecontent")
                print(alias, *cursor.fetchone())
        except TenantOnAnotherCell:
            print(alias, "refused")
"""


def test_raw_sql_sees_only_the_tenants_rows_and_only_on_its_cell(fleet):
    """Even with the row filter off, raw SQL in a tenant's context reads its rows on its own
    cell only: another cell's connection sends no tenant (its policies admit nothing)."""
    ids = fleet.tenant_ids()
    slug = next(s for s in DEMO_HOSTS if ids[s][1] == "eu1")
    pages = fleet.pages("eu1", ids[slug][0])
    done = fleet.manage("shell", "-c", PROBE.format(slug=slug))
    lines = [line for line in done.stdout.splitlines() if line and "imported" not in line]
    # The control database holds none of its rows; the other cell's policies admit none.
    assert lines == ["default 0 0", f"cell_eu1 {pages} 1", "cell_eu2 0 0"], done.stdout


def test_list_cells_and_delete_on_the_tenants_cell(fleet):
    listed = {
        row["slug"]: row["cell"]
        for row in json.loads(fleet.manage("tenants", "list", "--json").stdout)
    }
    assert listed == {slug: cell for slug, (_pk, cell) in fleet.tenant_ids().items()}
    health = json.loads(fleet.manage("tenants", "cells", "--json").stdout)
    assert [(row["cell"], row["reachable"]) for row in health] == [
        ("default", True),
        ("eu1", True),
        ("eu2", True),
    ]
    fleet.manage("tenants", "create", "--name", "Gone", "--slug", "gone", "--cell", "eu2")
    pk, cell = fleet.tenant_ids()["gone"]
    fleet.manage(
        "tenants",
        "run",
        "--tenant",
        "gone",
        "--",
        "shell",
        "-c",
        "from home.content import add_pages; add_pages([{'title': 'x', 'body': 'y'}])",
    )
    assert fleet.pages("eu2", pk) == 1
    fleet.manage("tenants", "delete", "gone", "--yes")
    assert "gone" not in fleet.tenant_ids()
    assert fleet.pages("eu2", pk) == 0


def test_a_cell_down_leaves_the_others_serving_and_sign_ups_go_elsewhere(fleet):
    ids = fleet.tenant_ids()
    victim = next(s for s in DEMO_HOSTS if ids[s][1] == "eu2")
    survivor = next(s for s in DEMO_HOSTS if ids[s][1] == "eu1")
    fleet.clusters["eu2"].stop()
    try:
        assert fleet.server.get(DEMO_HOSTS[survivor]).status == 200
        answer = sign_up(fleet, "rowwhiledown")
        assert answer.status == 201, answer.text
        assert fleet.tenant_ids()["rowwhiledown"][1] == "eu1"
        # The server (runserver) draws connections from a pool, which waits up to
        # DATABASE_POOL_TIMEOUT (10 s) for one it cannot open before the 503: allow for it.
        while_down = fleet.server.request(DEMO_HOSTS[victim], timeout=30)
    finally:
        fleet.clusters["eu2"].start()
    deadline = time.monotonic() + 30  # seconds on a quiet machine; slack for a loaded one
    while fleet.server.get(DEMO_HOSTS[victim]).status != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert DEMO_TITLES[victim] in fleet.server.get(DEMO_HOSTS[victim]).text
    assert while_down.status == 503 and DEMO_TITLES[survivor] not in while_down.text


def test_an_export_imported_into_another_cell_under_a_new_slug_serves_the_same_site(
    fleet, tmp_path
):
    """Issue 17 in row mode: the copy's pages in eu2 only (memberships and accounts on the
    control database), served on its own host, its owner signs in, checksums equal."""
    from tests.cells.transfer_checks import export_then_import_into_another_cell

    export_then_import_into_another_cell(fleet, tmp_path, "xrow")


def test_every_cell_has_the_seal_trigger_of_a_row_mode_move(fleet):
    """``tenants migrate`` puts tenants/seal.py's trigger and mark table on every cell."""
    query = (
        "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE t.tgname = %s AND NOT t.tgisinternal ORDER BY 1"
    )
    for cell in ("default", *CELLS):
        found = postgres_rows(fleet.url(cell), query, [seal.TRIGGER])
        assert [name for (name,) in found] == ["home_pagecontent", "home_sitesettings"], cell
        marks = f"SELECT to_regclass('{seal.SEALED_TABLE}') IS NOT NULL"
        assert postgres_rows(fleet.url(cell), marks) == [(True,)], cell


def _site_on(fleet, slug, cell) -> Visitor:
    """A new site on ``cell``, its owner signed in."""
    manage(
        *("tenants", "create", "--name", slug, "--slug", slug, "--cell", cell),
        *("--owner", slug, "--owner-email", f"{slug}@example.com", "--no-input"),
        env={**fleet.env, "TENANT_OWNER_PASSWORD": PASSWORD},
    )
    owner = Visitor(fleet.server)
    assert owner.login(f"{slug}.localhost", slug, PASSWORD)
    return owner


def test_a_sealed_tenants_writes_answer_503_and_its_neighbours_on_the_cell_write_on(fleet):
    """The seal of one tenant through the real server: its writes are refused (503, nothing
    written), its reads go on, another tenant of the same cell is not touched. Unsealed, the
    same write is accepted (the control: the 503 comes from the seal)."""
    cell = CELLS[0]
    sealed, neighbour = _site_on(fleet, "sealedsite", cell), _site_on(fleet, "nextdoor", cell)
    pk, _ = fleet.tenant_ids()["sealedsite"]
    mark = f"INSERT INTO {seal.SEALED_TABLE} (tenant_id, moved_to) VALUES (%s, %s)"
    postgres_rows(fleet.url(cell), mark, [pk, CELLS[1]])
    form = {"ordering": 0, "published": "on"}
    refused = sealed.submit("sealedsite.localhost", ADD_PAGE, {**form, "title": "after seal"})
    assert refused.status == 503 and refused.headers.get("Retry-After"), refused.status
    assert sealed.request("sealedsite.localhost", "/").status == 200
    written = neighbour.submit("nextdoor.localhost", ADD_PAGE, {**form, "title": "next door"})
    assert written.status == 302
    titles = "SELECT title FROM home_pagecontent WHERE tenant_id = %s AND title LIKE %s"
    assert postgres_rows(fleet.url(cell), titles, [pk, "after seal"]) == []
    postgres_rows(fleet.url(cell), f"DELETE FROM {seal.SEALED_TABLE} WHERE tenant_id = %s", [pk])
    again = sealed.submit("sealedsite.localhost", ADD_PAGE, {**form, "title": "after seal"})
    assert again.status == 302
    assert postgres_rows(fleet.url(cell), titles, [pk, "after seal"]) == [("after seal",)]


ADD_PAGE = "/admin/home/pagecontent/add/"
