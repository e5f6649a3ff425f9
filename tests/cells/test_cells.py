"""Cells (docs/cells.md): tenants on two more PostgreSQL servers beside the control database.

Two private clusters (tests/support/services.py) are cells ``eu1`` and ``eu2``; the control
database is a database of this test on the usual server. A real server process runs with
``TENANCY_CELLS``; every check of where data lives is SQL on each server.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.db.migrations.loader import MigrationLoader

from tests.support.cells import CELLS, PASSWORD, cell_fleet
from tests.support.cells import sign_up as sign_up_on
from tests.support.demo import DEMO_HOSTS, DEMO_TITLES
from tests.support.postgres import postgres_rows
from tests.support.servers import Visitor, gunicorn, manage, start_server
from tests.support.worker import WORKER_FLAGS

# Schema mode's (the SQLite pass is row mode); row mode's are tests/cells/test_cells_row.py.
pytestmark = pytest.mark.schema_only


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with cell_fleet("cells", tmp_path_factory.mktemp("media")) as fleet:
        yield fleet


def test_ensure_database_made_each_cells_database(fleet):
    assert fleet.prepared.count("Created database tenantsite (cell alias cell_") == 2


def sign_up(fleet, username):
    return sign_up_on(fleet.server, username)


def assert_lives_only_in(fleet, slug):
    """The tenant's schema is in its own cell and in no other database."""
    schema, cell = fleet.tenants()[slug]
    for other in ("default", *CELLS):
        present = schema in fleet.schemas(other)
        assert present == (other == cell), f"{slug}: schema {schema} in {other}: {present}"
    return schema, cell


# --- (1) serving from cells ----------------------------------------------------------------------


def test_demo_tenants_are_spread_over_the_cells_and_serve_from_them(fleet):
    tenants = fleet.tenants()
    assert tenants["default"][1] == "default"  # the platform's own site: the control database
    placed = {tenants[slug][1] for slug in DEMO_HOSTS if slug != "default"}
    assert placed == set(CELLS), tenants
    for slug, host in DEMO_HOSTS.items():
        answer = fleet.server.get(host)
        assert answer.status == 200, (slug, answer.text[:500])
        assert DEMO_TITLES[slug] in answer.text
        if slug == "default":
            continue
        schema, cell = assert_lives_only_in(fleet, slug)
        pages = postgres_rows(fleet.url(cell), f'SELECT count(*) FROM "{schema}".home_pagecontent')
        assert pages[0][0] > 0


def test_the_cells_public_schemas_hold_no_platform_data(fleet):
    for cell in CELLS:
        for table in ("tenants_tenant", "tenants_domain", "auth_user"):
            rows = postgres_rows(fleet.url(cell), f"SELECT count(*) FROM public.{table}")
            assert rows == [(0,)], (cell, table)


def test_a_signed_up_site_is_made_in_a_cell_from_its_spare_and_its_owner_signs_in(fleet):
    spares_before = {c: _spares(fleet, c) for c in CELLS}
    answer = sign_up(fleet, "cellsigner")
    assert answer.status == 201, answer.text
    schema, cell = assert_lives_only_in(fleet, "cellsigner")
    assert cell in CELLS
    assert _spares(fleet, cell) == spares_before[cell] - 1  # each cell has its own pool
    other = next(c for c in CELLS if c != cell)
    assert _spares(fleet, other) == spares_before[other]
    owner = postgres_rows(fleet.url(cell), f'SELECT username FROM "{schema}".auth_user')
    assert owner == [("cellsigner",)]
    # The platform account is on the control database, nowhere else.
    assert postgres_rows(
        fleet.control_url, "SELECT count(*) FROM auth_user WHERE username = 'cellsigner'"
    ) == [(1,)]
    assert fleet.server.get("cellsigner.localhost").status == 200
    assert Visitor(fleet.server).login("cellsigner.localhost", "cellsigner", PASSWORD)


def test_sign_ups_on_a_threaded_production_server_land_in_cells(fleet, tmp_path):
    """gunicorn's threads make their first connection to a cell while a new tenant is active
    (Django's version check opens a cursor then): sign-ups must not be refused for it."""
    server = start_server(
        gunicorn("--workers=1", "--threads=4", "--no-control-socket"),
        env=fleet.env,
        log_dir=tmp_path,
    )
    try:
        names = [f"threaded{n}" for n in range(4)]
        with ThreadPoolExecutor(len(names)) as pool:
            answers = list(pool.map(lambda name: sign_up_on(server, name), names))
        assert [a.status for a in answers] == [201] * len(names), [a.text for a in answers]
        for name in names:
            assert assert_lives_only_in(fleet, name)[1] in CELLS
            assert name in server.get(f"{name}.localhost").text
    finally:
        server.stop()


def test_jobs_and_commands_of_a_tenant_run_on_its_cell(fleet):
    """The welcome email (a tenant job, queued on the control database) runs in a worker in
    its tenant's context; ``tenants run`` runs a command on each tenant's own cell."""
    worker = fleet.manage("db_worker", "--batch", *WORKER_FLAGS)
    assert "cellsigner@example.com" in worker.stdout + worker.stderr
    statuses = postgres_rows(
        fleet.control_url, "SELECT DISTINCT status FROM django_tasks_database_dbtaskresult"
    )
    assert statuses == [("SUCCESSFUL",)]
    probe = "from home.models import PageContent; print('pages', PageContent.objects.count())"
    done = fleet.manage("tenants", "run", "--all", "--skip-default", "--", "shell", "-c", probe)
    printed = re.findall(r"== (\S+) .*?\npages (\d+)", done.stdout, re.S)
    assert len(printed) == len(fleet.tenants()) - 1, done.stdout
    for slug, count in printed:
        schema, cell = fleet.tenants()[slug]
        in_sql = postgres_rows(fleet.url(cell), f'SELECT count(*) FROM "{schema}".home_pagecontent')
        assert int(count) == in_sql[0][0], slug


def _spares(fleet, cell) -> int:
    return sum(1 for name in fleet.schemas(cell) if name.startswith("_spare_"))


def _tenant_in(fleet, cell, but_not=()):
    return next(
        slug
        for slug, (_schema, c) in sorted(fleet.tenants().items())
        if c == cell and slug not in but_not and slug in DEMO_HOSTS
    )


def test_a_tenant_of_one_cell_never_sees_another_cells_rows(fleet):
    one, two = (_tenant_in(fleet, cell) for cell in CELLS)
    schema_two, _ = fleet.tenants()[two]
    ids_two = [
        pk
        for (pk,) in postgres_rows(
            fleet.url("eu2"), f'SELECT id FROM "{schema_two}".home_pagecontent'
        )
    ]
    schema_one, _ = fleet.tenants()[one]
    ids_one = {
        pk
        for (pk,) in postgres_rows(
            fleet.url("eu1"), f'SELECT id FROM "{schema_one}".home_pagecontent'
        )
    }
    host_one = DEMO_HOSTS[one]
    for pk in ids_two:
        answer = fleet.server.get(host_one, f"/pages/{pk}/")
        if pk in ids_one:  # the same id in its own schema: its own page, never the other's
            assert DEMO_TITLES[two] not in answer.text
        else:
            assert answer.status == 404, (pk, answer.status)
    # The other cell's tenant, asked for on this tenant's host, is not there either.
    assert DEMO_TITLES[two] not in fleet.server.get(host_one).text


def test_a_session_from_one_cell_is_nothing_on_another_cells_site(fleet):
    visitor = Visitor(fleet.server)
    assert visitor.login("cellsigner.localhost", "cellsigner", PASSWORD)
    cookies = visitor.cookies["cellsigner.localhost"]
    _schema, cell = fleet.tenants()["cellsigner"]
    other = _tenant_in(fleet, next(c for c in CELLS if c != cell))
    thief = Visitor(fleet.server)
    thief.cookies[DEMO_HOSTS[other]] = dict(cookies)
    answer = thief.request(DEMO_HOSTS[other], "/admin/")
    assert answer.status == 302 and "/admin/login/" in answer.headers["Location"]


CROSS_CELL_PROBE = """
from django.db import connections
from home.models import PageContent
from tenants.backends.postgresql.base import TenantOnAnotherCell
from tenants.models import Tenant
from tenants.runtime.context import tenant_context

tenant = Tenant.objects.get(slug={slug!r})
with tenant_context(tenant):
    for alias in ("default", "cell_eu1", "cell_eu2"):
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT count(*) FROM home_pagecontent")
                print(alias, "answered", cursor.fetchone()[0])
        except TenantOnAnotherCell:
            print(alias, "refused")
    print("orm", PageContent.objects.count())
"""


def test_raw_sql_for_a_tenant_on_another_cells_connection_is_refused(fleet):
    """The schema backend refuses a connection that is not the active tenant's cell, whatever
    code asks (raw SQL on the control database's connection or another cell's)."""
    slug = _tenant_in(fleet, "eu1")
    schema, _cell = fleet.tenants()[slug]
    pages = postgres_rows(fleet.url("eu1"), f'SELECT count(*) FROM "{schema}".home_pagecontent')
    done = fleet.manage("shell", "-c", CROSS_CELL_PROBE.format(slug=slug))
    lines = [line for line in done.stdout.splitlines() if line and "imported" not in line]
    assert lines == [
        "default refused",
        f"cell_eu1 answered {pages[0][0]}",
        "cell_eu2 refused",
        f"orm {pages[0][0]}",
    ], done.stdout


# --- (2) placement ---------------------------------------------------------------------------


def test_placement_fills_the_emptiest_cell_and_an_operator_can_pin_one(fleet):
    counts = {c: sum(1 for _s, cell in fleet.tenants().values() if cell == c) for c in CELLS}
    emptiest = min(CELLS, key=lambda c: (counts[c], c))
    fleet.manage("tenants", "create", "--name", "Placed", "--slug", "placed")
    assert fleet.tenants()["placed"][1] == emptiest
    fuller = next(c for c in CELLS if c != fleet.tenants()["placed"][1])
    for slug in ("pinned", "pinnedtoo"):
        done = fleet.manage("tenants", "create", "--name", slug, "--slug", slug, "--cell", "eu2")
        assert "cell: eu2" in done.stdout
        assert_lives_only_in(fleet, slug)
        assert fleet.tenants()[slug][1] == "eu2"
    assert fuller  # (the policy was not asked for the pinned ones)
    # Cells at TENANCY_CELL_MAX_TENANTS get no more unpinned tenants: with every cell full, the
    # control database takes it (sign-ups keep working), and a pin still goes past the limit.
    counts = {c: sum(1 for _s, cell in fleet.tenants().values() if cell == c) for c in CELLS}
    emptiest = min(CELLS, key=lambda c: (counts[c], c))
    full = {**fleet.env, "TENANCY_CELL_MAX_TENANTS": str(counts[emptiest])}
    manage("tenants", "create", "--name", "Overflow", "--slug", "overflow", env=full)
    assert fleet.tenants()["overflow"][1] == "default"
    manage("tenants", "create", "--name", "Pin", "--slug", "pinfull", "--cell", "eu1", env=full)
    assert fleet.tenants()["pinfull"][1] == "eu1"
    refused = fleet.manage(
        "tenants", "create", "--name", "X", "--slug", "nocell", "--cell", "mars", check=False
    )
    assert refused.returncode == 1 and "No cell 'mars'" in refused.stderr
    assert "nocell" not in fleet.tenants()


def test_a_name_left_over_in_a_cell_is_refused_there_and_orphans_are_found_per_cell(fleet):
    fleet.clusters["eu1"].execute('CREATE SCHEMA "leftover"', "tenantsite")
    refused = fleet.manage(
        "tenants", "create", "--name", "L", "--slug", "leftover", "--cell", "eu1", check=False
    )
    assert refused.returncode == 1 and "taken" in refused.stderr, refused.stderr
    assert "leftover" not in fleet.tenants()
    orphans = fleet.manage("clean_orphan_schemas", "--dry-run").stdout
    assert "orphan   leftover (cell_eu1)" in orphans
    assert orphans.count("orphan   ") == 1, orphans  # every tenant's schema is owned in its cell
    fleet.manage("clean_orphan_schemas")
    assert "leftover" not in fleet.schemas("eu1")


def test_rename_show_and_delete_act_on_the_tenants_own_cell(fleet):
    fleet.manage("tenants", "create", "--name", "Mover", "--slug", "mover", "--cell", "eu1")
    fleet.manage("tenants", "rename", "mover", "mover-two")
    schema, cell = assert_lives_only_in(fleet, "mover-two")
    assert (schema, cell) == ("mover_two", "eu1")
    shown = json.loads(fleet.manage("tenants", "show", "mover-two", "--json").stdout)
    assert shown["cell"] == "eu1" and shown["schema_state"] == "up to date"
    assert fleet.server.get("mover-two.localhost").status == 200
    fleet.manage("tenants", "delete", "mover-two", "--drop-schema", "--yes")
    assert "mover-two" not in fleet.tenants()
    assert "mover_two" not in fleet.schemas("eu1")


# --- (3) fleet per cell ---------------------------------------------------------------------------


def test_list_and_cells_commands_show_each_tenants_cell(fleet):
    listed = json.loads(fleet.manage("tenants", "list", "--json").stdout)
    assert {row["slug"]: row["cell"] for row in listed} == {
        slug: cell for slug, (_schema, cell) in fleet.tenants().items()
    }
    cells = json.loads(fleet.manage("tenants", "cells", "--json").stdout)
    assert [row["cell"] for row in cells] == ["default", *CELLS]
    for row in cells:
        assert row["reachable"] and row["latency_ms"] is not None
        assert row["tenants"] == sum(1 for _s, c in fleet.tenants().values() if c == row["cell"])
    table = fleet.manage("tenants", "cells").stdout
    assert re.search(r"eu1\s.*cell_eu1", table)


def test_fleet_migrate_applies_what_is_missing_on_every_cell(fleet):
    # The latest one: forgetting an earlier one would leave a later one applied before it.
    [migration] = MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes("home")
    forgotten = []
    for schema, cell in fleet.tenants().values():
        if cell in CELLS:
            postgres_rows(
                fleet.url(cell),
                f'DELETE FROM "{schema}".django_migrations WHERE app = %s AND name = %s',
                migration,
            )
            forgotten.append((schema, cell))
    assert {cell for _schema, cell in forgotten} == set(CELLS)
    check = fleet.manage("tenants", "migrate", "--check", check=False)
    assert check.returncode == 1
    done = fleet.manage("tenants", "migrate", "--jobs", "2")
    assert "Failed" in done.stdout
    for schema, cell in forgotten:
        rows = postgres_rows(
            fleet.url(cell),
            f'SELECT count(*) FROM "{schema}".django_migrations WHERE app = %s AND name = %s',
            migration,
        )
        assert rows == [(1,)], (schema, cell)
    assert fleet.manage("tenants", "migrate", "--check").returncode == 0


# --- (2) a cell that is down ------------------------------------------------------------------


def test_a_cell_down_leaves_the_others_serving_and_sign_ups_go_elsewhere(fleet):
    down, up = "eu2", "eu1"
    victim, survivor = _tenant_in(fleet, down), _tenant_in(fleet, up)
    fleet.clusters[down].stop()
    try:
        assert fleet.server.get(DEMO_HOSTS[survivor]).status == 200
        assert fleet.server.get("localhost").status == 200  # the platform's own site
        answer = sign_up(fleet, "whiledown")
        assert answer.status == 201, answer.text
        assert fleet.tenants()["whiledown"][1] == up
        cells = fleet.manage("tenants", "cells", "--json", check=False)
        health = {row["cell"]: row["reachable"] for row in json.loads(cells.stdout)}
        assert health == {"default": True, up: True, down: False}
        assert cells.returncode == 1
        pinned = fleet.manage(
            "tenants", "create", "--name", "P", "--slug", "pin-down", "--cell", down, check=False
        )
        assert pinned.returncode == 1 and "not reachable" in pinned.stderr
        # Its own tenants: a 503 in their look (TenantMiddleware.process_exception, branch
        # outage), never another tenant's page.
        while_down = fleet.server.request(DEMO_HOSTS[victim], timeout=30)  # the pool's wait
        assert DEMO_TITLES[survivor] not in while_down.text
    finally:
        fleet.clusters[down].start()
    deadline = time.monotonic() + 30  # seconds on a quiet machine; slack for a loaded one
    while fleet.server.get(DEMO_HOSTS[victim]).status != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    answer = fleet.server.get(DEMO_HOSTS[victim])
    assert answer.status == 200 and DEMO_TITLES[victim] in answer.text
    # Last, as it needs branch outage's TenantMiddleware.process_exception (a 500 without it).
    assert while_down.status == 503, while_down.status
    [(name,)] = postgres_rows(
        fleet.control_url, "SELECT name FROM tenants_tenant WHERE slug = %s", [victim]
    )
    assert name in while_down.text  # its own look: its name, from the control database


def test_the_control_database_is_what_a_cell_alias_is_not(fleet):
    """A cell's connection settings are its own: nothing of the control URL leaks in."""
    for cell in CELLS:
        with psycopg.connect(fleet.url(cell)) as conn:
            name = conn.execute("SELECT current_database()").fetchone()[0]
        assert name == "tenantsite"


def test_an_export_imported_into_another_cell_under_a_new_slug_serves_the_same_site(
    fleet, tmp_path
):
    """Issue 17: export a tenant of eu1, import it into eu2 as a new slug: the same pages on
    its own host, its owner signs in, checksums equal the manifest's, its schema on eu2 only,
    the original untouched; an unknown or unreachable cell is refused."""
    from tests.cells.transfer_checks import export_then_import_into_another_cell

    export_then_import_into_another_cell(fleet, tmp_path, "xcell")
