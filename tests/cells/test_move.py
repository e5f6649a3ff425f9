"""Moving a tenant between cells (docs/cells.md, "Moving a tenant") on two private clusters,
under a real gunicorn with clients writing and reading over HTTP while the move runs.

Every check of where data lives is SQL on each server; acknowledged writes are counted on the
client side (an admin "add page" answered 302) and looked for afterwards on the new cell.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.support.cells import CELLS, PASSWORD, cell_fleet
from tests.support.demo import DEMO_HOSTS, DEMO_TITLES
from tests.support.postgres import postgres_rows
from tests.support.servers import REPO, Visitor, gunicorn, manage, start_server

# Schema mode's (the SQLite pass is row mode); row mode's are tests/cells/test_move_row.py.
pytestmark = pytest.mark.schema_only
ROWS = 10_000
MOVER = "mover"
HOST = f"{MOVER}.localhost"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    command = gunicorn("--workers=2", "--threads=4", "--graceful-timeout=2")
    with cell_fleet("move", tmp_path_factory.mktemp("media"), server_command=command) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def mover(fleet):
    """A signed-up site with ROWS more (unpublished) pages, and its owner signed in."""
    manage(
        *("tenants", "create", "--name", "Mover site", "--slug", MOVER, "--cell", CELLS[0]),
        *("--owner", MOVER, "--owner-email", f"{MOVER}@example.com", "--no-input"),
        env={**fleet.env, "TENANT_OWNER_PASSWORD": PASSWORD},
    )
    schema, cell = fleet.tenants()[MOVER]
    tenant_id = postgres_rows(
        fleet.control_url, f"SELECT id FROM tenants_tenant WHERE slug = '{MOVER}'"
    )
    postgres_rows(
        fleet.url(cell),
        f'INSERT INTO "{schema}".home_pagecontent (tenant_id, title, body, ordering, published, '
        f"updated_at) SELECT {tenant_id[0][0]}, 'bulk ' || g, repeat('x', 200), g, false, now() "
        f"FROM generate_series(1, {ROWS}) g",
    )
    owner = Visitor(fleet.server)
    assert owner.login(HOST, MOVER, PASSWORD)
    return owner


def move(fleet, to, *, pause_at=None, check=True):
    env = {**fleet.env, "PYTHONUNBUFFERED": "1"}
    if pause_at:
        env["TENANCY_MOVE_PAUSE_AT"] = f"{pause_at}:120"
    return manage("tenants", "move", MOVER, "--to", to, env=env, check=check)


def other_cell(fleet) -> str:
    return next(c for c in CELLS if c != fleet.tenants()[MOVER][1])


def titles_on(fleet, cell) -> set[str]:
    schema = fleet.tenants()[MOVER][0]
    rows = postgres_rows(fleet.url(cell), f'SELECT title FROM "{schema}".home_pagecontent')
    return {title for (title,) in rows}


def add_page(visitor, title):
    form = {"title": title, "ordering": 0, "published": "on"}
    return visitor.submit(HOST, "/admin/home/pagecontent/add/", form)


class Client(threading.Thread):
    """Repeats ``action`` until stopped, keeping every answer's status (and what it wrote)."""

    def __init__(self, action):
        super().__init__(daemon=True)
        self.action, self.stop, self.answers, self.errors = action, threading.Event(), [], []

    def run(self):
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                self.answers.append(self.action(n))
            except Exception as error:  # a timeout or a reset: not acknowledged, kept to see
                self.errors.append(repr(error))
            time.sleep(0.01)


def test_a_move_under_load_loses_no_acknowledged_write(fleet, mover):
    source = fleet.tenants()[MOVER][1]
    target = other_cell(fleet)
    neighbour = next(s for s, (_, c) in fleet.tenants().items() if c == source and s in DEMO_HOSTS)
    page = add_page(mover, "Mover home page")
    assert page.status == 302, page.text[:300]
    schema = fleet.tenants()[MOVER][0]
    (page_id,) = postgres_rows(
        fleet.url(source),
        f"SELECT id FROM \"{schema}\".home_pagecontent WHERE title = 'Mover home page'",
    )[0]
    neighbour_count = f'SELECT count(*) FROM "{fleet.tenants()[neighbour][0]}".home_pagecontent'
    neighbour_pages = postgres_rows(fleet.url(source), neighbour_count)
    others = [t for s, t in DEMO_TITLES.items() if s != neighbour]

    def write(n):
        answer = add_page(mover, f"written {n}")
        return answer.status, f"written {n}"

    def read(_n):
        answer = fleet.server.get(HOST, f"/pages/{page_id}/")
        wrong = any(t in answer.text for t in DEMO_TITLES.values())
        return answer.status, "Mover home page" in answer.text, wrong

    def neighbour_read(_n):
        answer = fleet.server.get(DEMO_HOSTS[neighbour])
        mixed = any(t in answer.text for t in others)
        return answer.status, DEMO_TITLES[neighbour] in answer.text, mixed

    clients = [Client(write), Client(read), Client(neighbour_read)]
    for client in clients:
        client.start()
    time.sleep(1.0)
    done = move(fleet, target)
    time.sleep(1.5)  # writes go on, on the new cell
    for client in clients:
        client.stop.set()
        client.join(30)
    writer, reader, third = clients
    print(done.stdout)
    frozen = re.search(r"writes frozen (\d+) ms", done.stdout)
    assert frozen, done.stdout
    statuses = [s for s, _ in writer.answers]
    print(
        f"freeze {frozen.group(1)} ms; writes: {len(statuses)} answered, "
        f"{statuses.count(302)} acknowledged, {statuses.count(503)} answered 503; "
        f"reads: {len(reader.answers)}; neighbour reads: {len(third.answers)}"
    )
    assert fleet.tenants()[MOVER][1] == target
    assert schema in fleet.schemas(target) and schema not in fleet.schemas(source)
    acknowledged = {title for status, title in writer.answers if status == 302}
    after = [t for s, t in writer.answers[-10:] if s == 302]
    assert after, "no write was acknowledged after the move"
    assert acknowledged <= titles_on(fleet, target), acknowledged - titles_on(fleet, target)
    assert set(statuses) <= {302, 503}, statuses
    assert not writer.errors and not reader.errors and not third.errors
    assert all(status == 200 and mine and not wrong for status, mine, wrong in reader.answers), [
        a for a in reader.answers if a != (200, True, False)
    ]
    assert all(status == 200 and own and not mixed for status, own, mixed in third.answers)
    assert len(titles_on(fleet, target)) >= ROWS
    assert postgres_rows(fleet.url(source), neighbour_count) == neighbour_pages


def _paused_at(fleet, step, to, seconds=120):
    """Start the move paused at ``step`` for ``seconds``; return it once it says so."""
    env = {**os.environ, **fleet.env, "PYTHONUNBUFFERED": "1"}
    env["TENANCY_MOVE_PAUSE_AT"] = f"{step}:{seconds}"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "tenants", "move", MOVER, "--to", to],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        text=True,
    )
    seen = []
    for line in process.stdout:
        seen.append(line)
        if f": {step} (" in line:
            break
    else:
        pytest.fail(f"the move never reached {step}: {''.join(seen)}")
    return process


def _killed_at(fleet, step, to):
    """Start the move paused at ``step``, wait until it says so, SIGKILL it."""
    process = _paused_at(fleet, step, to)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def test_a_move_killed_half_way_leaves_the_site_serving_and_a_rerun_finishes_it(fleet, mover):
    source, target = fleet.tenants()[MOVER][1], other_cell(fleet)
    schema = fleet.tenants()[MOVER][0]
    # Killed during the copy: the site reads and writes on its old cell; the rerun drops the
    # unfinished copy and moves.
    first = _paused_at(fleet, "copied", target)
    second = move(fleet, target, check=False)
    assert second.returncode == 1 and "Another move of mover is running" in second.stderr
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    assert schema in fleet.schemas(target)  # the unfinished copy
    assert fleet.tenants()[MOVER][1] == source
    assert fleet.server.get(HOST).status == 200
    assert add_page(mover, "after the first kill").status == 302
    done = move(fleet, target)
    assert "dropped an unfinished copy" in done.stdout, done.stdout
    assert fleet.tenants()[MOVER][1] == target
    assert "after the first kill" in titles_on(fleet, target)
    assert schema not in fleet.schemas(source)
    # Killed after the seal, before the switch: reads go on, writes answer 503 (never land
    # in the old copy); the rerun finishes the move from there.
    source, target = target, source
    _killed_at(fleet, "switch", target)
    assert fleet.tenants()[MOVER][1] == source
    assert fleet.server.get(HOST).status == 200
    refused = add_page(mover, "while sealed")
    assert refused.status == 503 and refused.headers.get("Retry-After"), refused.status
    done = move(fleet, target)
    assert "resumed after the seal" in done.stdout, done.stdout
    assert fleet.tenants()[MOVER][1] == target
    assert schema not in fleet.schemas(source) and schema in fleet.schemas(target)
    assert "while sealed" not in titles_on(fleet, target)
    assert add_page(mover, "after the rerun").status == 302
    assert "after the rerun" in titles_on(fleet, target)
    # Killed after the switch, before the old copy is removed: the site is on its new cell;
    # the rerun removes the sealed old copy. A server process that revalidates its lookups
    # only every minute still sends the tenant to the old cell: its first write hits the seal
    # (503), which makes it forget its lookups; the next goes to the new cell.
    source, target = target, source
    stale_env = {**fleet.env, "TENANCY_RESOLVER_REVALIDATE_SECONDS": "60"}
    stale = start_server(gunicorn("--workers=1", "--threads=2"), env=stale_env)
    try:
        late = Visitor(stale)
        assert late.login(HOST, MOVER, PASSWORD)  # its lookup of the tenant: the old cell
        _killed_at(fleet, "remove-old-copy", target)
        assert fleet.tenants()[MOVER][1] == target and schema in fleet.schemas(source)
        assert add_page(mover, "moved, old copy left").status == 302
        assert add_page(late, "stale process").status == 503
        assert add_page(late, "stale process, again").status == 302
    finally:
        stale.stop()
    assert {"moved, old copy left", "stale process, again"} <= titles_on(fleet, target)
    assert "stale process" not in titles_on(fleet, target)
    done = move(fleet, target)
    assert f"dropped the old copy on {source}" in done.stdout, done.stdout
    assert schema not in fleet.schemas(source)


def test_a_move_to_a_cell_that_is_down_fails_and_the_site_serves_on(fleet, mover):
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


def test_a_target_going_down_mid_move_fails_it_and_the_site_serves_on(fleet, mover):
    source, target = fleet.tenants()[MOVER][1], other_cell(fleet)
    process = _paused_at(fleet, "copied", target, seconds=3)
    fleet.clusters[target].stop()
    try:
        rest = process.communicate(timeout=60)[0]
        assert process.returncode == 1 and "Database error" in rest, rest
        assert fleet.tenants()[MOVER][1] == source
        assert fleet.server.get(HOST).status == 200
        assert add_page(mover, "target went down").status == 302
    finally:
        fleet.clusters[target].start()
    done = move(fleet, target)
    assert "dropped an unfinished copy" in done.stdout, done.stdout
    assert "target went down" in titles_on(fleet, target)


def test_moving_to_the_cell_it_is_on_does_nothing(fleet, mover):
    here = fleet.tenants()[MOVER][1]
    done = move(fleet, here)
    assert f"is on cell {here}" in done.stdout
    unknown = move(fleet, "nowhere", check=False)
    assert unknown.returncode == 1 and "No cell 'nowhere'" in unknown.stderr
    platform = manage("tenants", "move", "default", "--to", here, env=fleet.env, check=False)
    assert platform.returncode == 1 and "stays on the control database" in platform.stderr
