"""``tenants move`` in row mode with row-level security (tenants/operations/move_row.py): the
tenant's rows copied between two cells under load, one tenant frozen (tenants/seal.py), never
its neighbours on the same cell; kills and a cell that is down. The schema-mode equivalents
are test_move.py, whose helpers these reuse."""

from __future__ import annotations

import re
import threading
import time

import pytest
from django.conf import settings

from tests.cells.test_move import (
    HOST,
    MOVER,
    ROWS,
    Client,
    _killed_at,
    _paused_at,
    add_page,
    move,
    other_cell,
)
from tests.support.cells import CELLS, PASSWORD, cell_fleet
from tests.support.postgres import postgres_rows
from tests.support.servers import Visitor, gunicorn, manage

pytestmark = pytest.mark.skipif(
    settings.TENANCY_MODE != "row" or not settings.TENANCY_ROW_LEVEL_SECURITY,
    reason="row-mode moves need cells on PostgreSQL with row-level security (schema mode: "
    "test_move.py; SQLite has no cells)",
)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    command = gunicorn("--workers=2", "--threads=4", "--graceful-timeout=2")
    media = tmp_path_factory.mktemp("media")
    with cell_fleet("moverow", media, mode="row", server_command=command) as fleet:
        yield fleet


def tenant_id(fleet, slug=MOVER) -> int:
    query = "SELECT id FROM tenants_tenant WHERE slug = %s"
    return postgres_rows(fleet.control_url, query, [slug])[0][0]


def titles_on(fleet, cell, slug=MOVER) -> list[str]:
    query = "SELECT title FROM home_pagecontent WHERE tenant_id = %s"
    return [t for (t,) in postgres_rows(fleet.url(cell), query, [tenant_id(fleet, slug)])]


@pytest.fixture(scope="module")
def mover(fleet):
    """A site on the first cell with ROWS more (unpublished) pages, its owner signed in."""
    manage(
        *("tenants", "create", "--name", "Mover site", "--slug", MOVER, "--cell", CELLS[0]),
        *("--owner", MOVER, "--owner-email", f"{MOVER}@example.com", "--no-input"),
        env={**fleet.env, "TENANT_OWNER_PASSWORD": PASSWORD},
    )
    postgres_rows(
        fleet.url(CELLS[0]),
        "INSERT INTO home_pagecontent (tenant_id, title, body, ordering, published, "
        "updated_at) SELECT %s, 'bulk ' || g, repeat('x', 200), g, false, now() "
        f"FROM generate_series(1, {ROWS}) g",
        [tenant_id(fleet)],
    )
    owner = Visitor(fleet.server)
    assert owner.login(HOST, MOVER, PASSWORD)
    return owner


@pytest.fixture(scope="module")
def neighbour(fleet, mover):
    """Another site on the mover's first cell, with a page, its owner signed in."""
    manage(
        *("tenants", "create", "--name", "Next door", "--slug", NEXT, "--cell", CELLS[0]),
        *("--owner", NEXT, "--owner-email", f"{NEXT}@example.com", "--no-input"),
        env={**fleet.env, "TENANT_OWNER_PASSWORD": PASSWORD},
    )
    owner = Visitor(fleet.server)
    assert owner.login(NEXT_HOST, NEXT, PASSWORD)
    form = {"title": "Next door home", "ordering": 0, "published": "on"}
    assert owner.submit(NEXT_HOST, ADD_PAGE, form).status == 302
    return owner


def test_a_row_move_under_load_loses_no_write_and_freezes_no_neighbour(fleet, mover, neighbour):
    source, target = fleet.tenants()[MOVER][1], other_cell(fleet)
    assert fleet.tenants()[NEXT][1] == source
    assert add_page(mover, "Mover home page").status == 302

    def write(n):
        return add_page(mover, f"written {n}").status, f"written {n}"

    def read(_n):
        answer = fleet.server.get(HOST)
        return answer.status, "Mover home page" in answer.text

    def neighbour_read(_n):
        start = time.monotonic()
        answer = fleet.server.get(NEXT_HOST)
        mixed = "Mover home page" in answer.text
        return answer.status, "Next door home" in answer.text, mixed, time.monotonic() - start

    def neighbour_write(n):
        start = time.monotonic()
        form = {"title": f"neighbour {n}", "ordering": 0, "published": "on"}
        answer = neighbour.submit(NEXT_HOST, ADD_PAGE, form)
        return answer.status, f"neighbour {n}", time.monotonic() - start

    clients = [Client(write), Client(read), Client(neighbour_read), Client(neighbour_write)]
    for client in clients:
        client.start()
    time.sleep(1.0)
    done = move(fleet, target)
    time.sleep(1.5)
    for client in clients:
        client.stop.set()
        client.join(30)
    writer, reader, third, fourth = clients
    print(done.stdout)
    frozen = re.search(r"writes frozen (\d+) ms", done.stdout)
    assert frozen, done.stdout
    statuses = [a[0] for a in writer.answers]
    slowest = max(a[-1] for a in third.answers + fourth.answers)
    print(
        f"freeze {frozen.group(1)} ms; writes: {len(statuses)} answered, "
        f"{statuses.count(302)} acknowledged, {statuses.count(503)} answered 503; reads: "
        f"{len(reader.answers)}; neighbour: {len(third.answers)} reads, {len(fourth.answers)} "
        f"writes, slowest {slowest * 1000:.0f} ms"
    )
    assert fleet.tenants()[MOVER][1] == target
    on_target = set(titles_on(fleet, target))
    assert titles_on(fleet, source) == []  # rows only on the target
    acknowledged = {title for status, title in writer.answers if status == 302}
    assert acknowledged <= on_target, acknowledged - on_target
    assert [t for s, t in writer.answers[-10:] if s == 302], "nothing acknowledged after"
    assert set(statuses) <= {302, 503}, statuses
    assert not writer.errors and not reader.errors and not third.errors and not fourth.errors
    assert all(status == 200 and mine for status, mine in reader.answers)
    assert all(s == 200 and own and not mixed for s, own, mixed, _ in third.answers)
    assert all(s == 302 for s, _, _ in fourth.answers), [a[0] for a in fourth.answers]
    neighbour_titles = set(titles_on(fleet, source, NEXT))
    assert {t for _, t, _ in fourth.answers} <= neighbour_titles
    assert len(on_target) >= ROWS
    assert Visitor(fleet.server).login(HOST, MOVER, PASSWORD)  # the owner still signs in


def test_the_freeze_holds_the_moving_tenants_writes_only(fleet, mover, neighbour):
    """The move paused 3 s inside its freeze: the mover's write waits it out and is refused
    (503, nothing written); the neighbour on the same cell writes at once."""
    source = fleet.tenants()[NEXT][1]
    if fleet.tenants()[MOVER][1] != source:  # back beside its neighbour first
        move(fleet, source)
    target = other_cell(fleet)
    process = _paused_at(fleet, "sync", target, seconds=3)
    held = {}

    def write_once():
        started = time.monotonic()
        held["status"] = add_page(mover, "during the freeze").status
        held["waited"] = time.monotonic() - started

    writer = threading.Thread(target=write_once)
    writer.start()
    form = {"title": "next door, during the freeze", "ordering": 0, "published": "on"}
    begin = time.monotonic()
    assert neighbour.submit(NEXT_HOST, ADD_PAGE, form).status == 302
    assert time.monotonic() - begin < 1.0
    rest = process.communicate(timeout=60)[0]
    assert process.returncode == 0, rest
    writer.join(30)
    assert held["status"] == 503 and held["waited"] >= 1.5, held
    assert "during the freeze" not in titles_on(fleet, target)
    assert "during the freeze" not in titles_on(fleet, source)
    assert "next door, during the freeze" in titles_on(fleet, source, NEXT)


def test_a_row_move_killed_half_way_is_finished_by_a_rerun(fleet, mover):
    source, target = fleet.tenants()[MOVER][1], other_cell(fleet)
    first = _paused_at(fleet, "copied", target)
    second = move(fleet, target, check=False)
    assert second.returncode == 1 and "Another move of mover is running" in second.stderr
    _kill(first)
    assert titles_on(fleet, target)  # the unfinished copy
    assert fleet.tenants()[MOVER][1] == source
    assert add_page(mover, "after the first kill").status == 302
    done = move(fleet, target)
    assert "removed an unfinished or old copy" in done.stdout, done.stdout
    assert fleet.tenants()[MOVER][1] == target
    assert "after the first kill" in titles_on(fleet, target)
    assert titles_on(fleet, source) == []
    # Killed after the seal, before the switch: writes answer 503; the rerun switches.
    source, target = target, source
    _killed_at(fleet, "switch", target)
    assert fleet.tenants()[MOVER][1] == source
    assert fleet.server.get(HOST).status == 200
    refused = add_page(mover, "while sealed")
    assert refused.status == 503 and refused.headers.get("Retry-After"), refused.status
    done = move(fleet, target)
    assert "resumed after the seal" in done.stdout, done.stdout
    assert fleet.tenants()[MOVER][1] == target
    assert "while sealed" not in titles_on(fleet, target)
    assert titles_on(fleet, source) == []
    assert add_page(mover, "after the rerun").status == 302
    # Killed after the switch: the rerun removes the sealed old rows.
    source, target = target, source
    _killed_at(fleet, "remove-old-copy", target)
    assert fleet.tenants()[MOVER][1] == target and titles_on(fleet, source)
    assert add_page(mover, "moved, old rows left").status == 302
    done = move(fleet, target)
    assert f"removed the old rows on {source}" in done.stdout, done.stdout
    assert titles_on(fleet, source) == []
    assert {"after the rerun", "moved, old rows left"} <= set(titles_on(fleet, target))


def _kill(process):
    import os
    import signal

    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def test_a_row_move_to_a_cell_that_is_down_fails_and_the_site_serves_on(fleet, mover):
    source, target = fleet.tenants()[MOVER][1], other_cell(fleet)
    fleet.clusters[target].stop()
    try:
        failed = move(fleet, target, check=False)
        assert failed.returncode == 1 and "not reachable" in failed.stderr, failed.stderr
        assert fleet.tenants()[MOVER][1] == source
        assert fleet.server.get(HOST).status == 200
        assert add_page(mover, "target down").status == 302
    finally:
        fleet.clusters[target].start()
    assert "target down" in titles_on(fleet, source)


ADD_PAGE = "/admin/home/pagecontent/add/"
NEXT = "rownext"
NEXT_HOST = f"{NEXT}.localhost"
