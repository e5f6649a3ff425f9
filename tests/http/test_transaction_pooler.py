"""Behind PgBouncer in transaction mode, no request ever sees or writes another tenant's data.

The deployment of issue 14: gunicorn (3 workers x 4 threads, DEBUG off) whose connections go
through Debian's PgBouncer (``pool_mode=transaction``, ``default_pool_size=2``) to the test
database's server, with ``TENANCY_TRANSACTION_POOLER=true``. Consecutive transactions of one
Django connection then run on whichever of the two server connections is free, so any state a
statement leaves in its server session is met by another client, usually another tenant's.

TENANTS bench tenants, each with one page that names it in its title and body (the page lives in
the tenant's schema, or in its rows), and an owner. CLIENTS threads rotate over them: home pages
read anonymously, and an admin edit per tenant through a logged-in session (log-in, the change
form, its POST, the page read back; a quarter of the tenants in the variant runs). Every page
must show its own tenant's page and no other's; no answer may be a 500; every edit must be in
the tenant's own data and nowhere else (checked in the database afterwards, past the pooler and
row-level security).

* schema mode: also the same run with the setting off (django-tenants' way: a session-level
  ``SET search_path``, skipped when the connection believes it is set). That control must show
  wrong-schema reads, foreign pages, 500s or misplaced writes, or the test proves nothing.
* row mode with row-level security: the tenant is sent as ``SET LOCAL tenancy.tenant_id`` with
  every statement whatever the setting, and nothing is ever set for the session, so there is no
  session-state path to run as a control.
* row mode without row-level security (Django's own backend, the row filter alone): the same.
* both: Django's own pool (``DATABASE_POOL``) in front of the same PgBouncer; a sign-up through
  the pooler (schema mode: a spare schema claimed and the pool refilled in the background,
  under a transaction-level advisory lock) and its welcome email's job run by a worker through
  it; options that would make psycopg prepare statements refused.

Everything runs on a copy of the test database (``<name>_pooler``), dropped at the end.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.conf import settings
from django.db import connection, connections

from tests.support import postgres
from tests.support.modes import ROW_LEVEL_SECURITY, SCHEMA_MODE
from tests.support.servers import REPO, Response, Visitor, gunicorn, manage, start_server
from tests.support.services import PgBouncer
from tests.support.worker import WORKER_FLAGS

pytestmark = [
    pytest.mark.skipif(
        "sqlite" in settings.DATABASES["default"]["ENGINE"],
        reason="not applicable to SQLite: PgBouncer pools PostgreSQL server connections "
        "(row mode on SQLite has no database server to pool)",
    ),
    pytest.mark.skipif(
        not SCHEMA_MODE and not ROW_LEVEL_SECURITY,
        reason="row mode on PostgreSQL runs with row-level security in this suite",
    ),
]

TENANTS = 40
CLIENTS = 16
READ_ROUNDS = 4  # home pages per tenant per run
PREFIX = "pooler"
PASSWORD = "pooler pass phrase 1"  # MD5-hashed (tests.support.live_settings): logins are cheap
MARKER = re.compile(r"Bench tenant (\d{5}): page|Page 1 of pooler-(\d{5})")
ADVISORY_KEY = 7_140_014  # any key: the lock tests' own
SPARES = "SELECT count(*) FROM pg_namespace WHERE starts_with(nspname, '_spare_')"


# --- The database, the pooler, the server ----------------------------------------------------


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    auth, _, _host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{auth}@127.0.0.1:{port}"))


class Site:
    """The copy database with its bench tenants, a PgBouncer in front of its server, and the
    environments of processes that connect directly or through the pooler."""

    def __init__(self, bouncer: PgBouncer, server_port: int, name: str):
        self.bouncer, self.server_port, self.name = bouncer, server_port, name
        self.direct = {
            "TENANCY_MODE": settings.TENANCY_MODE,
            "DATABASE_URL": postgres.database_url(name),
            "DJANGO_SETTINGS_MODULE": "tests.support.live_settings",
            "PYTHONPATH": str(REPO),
            "TENANCY_SCHEMA_POOL_REFILL": "command",
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "CACHE_URL": "locmemcache://",
            "DEBUG": "False",
        }
        if ROW_LEVEL_SECURITY:
            self.direct["DATABASE_APP_URL"] = postgres.database_url(name, "default")
        self.tenants: list[dict] = []

    def through_pooler(self, **extra) -> dict[str, str]:
        env = {**self.direct, "TENANCY_TRANSACTION_POOLER": "true", **extra}
        env = {key: value for key, value in env.items() if value is not None}  # None: unset
        for key in ("DATABASE_URL", "DATABASE_APP_URL"):
            if key in env:
                env[key] = _with_port(env[key], self.bouncer.port)
        return env

    def rows(self, query, params=None):
        """As the owner (or superuser), straight to the server: every tenant's rows."""
        return postgres.postgres_rows(self.direct["DATABASE_URL"], query, params)

    def load_tenants(self):
        found = self.rows(
            "SELECT t.id, t.slug, t.schema_name, d.domain FROM tenants_tenant t "
            "JOIN tenants_domain d ON d.tenant_id = t.id AND d.is_primary "
            "WHERE t.slug LIKE %s ORDER BY t.slug",
            [PREFIX + "-%"],
        )
        self.tenants = [
            {"id": i, "slug": s, "schema": sc, "host": d, "number": int(s.rsplit("-", 1)[1])}
            for i, s, sc, d in found
        ]
        for tenant, rows in self.pages_by_keeper():
            [(tenant["page"], *_rest)] = rows

    def pages_by_keeper(self):
        """Each bench tenant with ``(id, tenant_id, title, body)`` of the pages kept for it:
        in its schema (schema mode, whatever tenant_id they carry), or under its tenant_id."""
        if SCHEMA_MODE:
            for tenant in self.tenants:
                table = f'"{tenant["schema"]}".home_pagecontent'
                yield tenant, self.rows(f"SELECT id, tenant_id, title, body FROM {table}")
            return
        rows = self.rows(
            "SELECT id, tenant_id, title, body FROM home_pagecontent WHERE tenant_id = ANY(%s)",
            [[t["id"] for t in self.tenants]],
        )
        for tenant in self.tenants:
            yield tenant, [row for row in rows if row[1] == tenant["id"]]

    def misplaced_rows(self) -> list[tuple]:
        """Pages kept for one tenant that carry another tenant's id or marker; and, schema
        mode, pages of bench tenants in the public schema."""
        wrong = []
        for tenant, rows in self.pages_by_keeper():
            for page_id, tenant_id, title, body in rows:
                if tenant_id != tenant["id"] or _numbers(f"{title} {body}") != {tenant["number"]}:
                    wrong.append((tenant["slug"], page_id, tenant_id, title))
        if SCHEMA_MODE:
            wrong += self.rows(
                "SELECT 'public', id, tenant_id, title FROM public.home_pagecontent "
                "WHERE tenant_id = ANY(%s)",
                [[t["id"] for t in self.tenants]],
            )
        return wrong

    def advisory_locks(self) -> int:
        return self.rows(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND d.datname = %s",
            [self.name],
        )[0][0]

    def drop_spares(self) -> None:
        """Spare schemas the test database held when it was copied: the test counts its own."""
        for (name,) in self.rows(SPARES.replace("count(*)", "nspname")):
            self.rows(f'DROP SCHEMA "{name}" CASCADE')

    def spares(self) -> int:
        return self.rows(SPARES)[0][0]

    def serve(self, log_dir: Path, env: dict[str, str]):
        command = gunicorn(
            "--workers=3", "--threads=4", "--graceful-timeout=2", "--no-control-socket"
        )
        return start_server(command, env=env, log_dir=log_dir, ready_path="/static/home/site.css")


def _numbers(text: str) -> set[int]:
    return {int(a or b) for a, b in MARKER.findall(text)}


def _copy_test_database(name: str) -> None:
    """``CREATE DATABASE name TEMPLATE <test database>``: its migrations, roles' grants,
    policies and demo tenants, in a second. The template must have no other session."""
    source = connection.settings_dict["NAME"]
    connections.close_all()
    postgres.drop_database(postgres.database_url(name))
    with psycopg.connect(postgres.database_url("postgres"), autocommit=True) as admin:
        for attempt in range(20):
            try:
                admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
                return
            except psycopg.errors.ObjectInUse as error:  # an earlier test's server exiting
                if attempt == 19:
                    query = "SELECT pid, application_name FROM pg_stat_activity WHERE datname = %s"
                    sessions = admin.execute(query, [source]).fetchall()
                    raise AssertionError(f"{error}: {sessions}") from error
                time.sleep(0.25)


@pytest.fixture(scope="module")
def site(django_db_setup, django_db_blocker):
    name = f"{connection.settings_dict['NAME']}_pooler"
    db = connection.settings_dict
    with django_db_blocker.unblock():
        _copy_test_database(name)
    try:
        port = int(db.get("PORT") or 5432)
        with PgBouncer(port, server_host=db.get("HOST") or "127.0.0.1", pool_size=2) as bouncer:
            site = Site(bouncer, port, name)
            manage("create_bench_tenants", str(TENANTS), "--prefix", PREFIX, "--pages", "1",
                   "--members", "1", "--password", PASSWORD, env=site.direct)  # fmt: skip
            site.load_tenants()
            assert len(site.tenants) == TENANTS and not site.misplaced_rows()
            yield site
    finally:
        postgres.drop_database(postgres.database_url(name))


# --- The load ----------------------------------------------------------------------------------


class Tally:
    """What the clients saw, counted across threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.statuses: Counter = Counter()
        self.foreign: list = []  # (tenant, other tenants' numbers on its page)
        self.wrong_schema: list = []  # a 200 page without the tenant's own page on it
        self.failed: list = []  # steps of an edit that did not go as a browser expects
        self.edits: dict[int, str] = {}  # tenant number -> the title its acknowledged edit set

    def page(self, tenant, response) -> set[int]:
        numbers = _numbers(response.body.decode(errors="replace"))
        with self.lock:
            self.statuses[response.status] += 1
            if response.status == 200:
                if numbers - {tenant["number"]}:
                    self.foreign.append((tenant["slug"], sorted(numbers - {tenant["number"]})))
                if tenant["number"] not in numbers:
                    self.wrong_schema.append(tenant["slug"])
        return numbers

    def note(self, tenant, step, detail):
        with self.lock:
            self.failed.append((tenant["slug"], step, str(detail)[:120]))

    def summary(self) -> dict:
        return {
            "statuses": dict(self.statuses),
            "foreign pages": len(self.foreign),
            "wrong-schema pages": len(self.wrong_schema),
            "failed edit steps": len(self.failed),
        }


def read(server, tally, tenant):
    tally.page(tenant, server.request(tenant["host"], "/", timeout=30))


def edit(server, tally, tenant, run):
    """Log in as the tenant's owner, change its page, read the home page back."""
    visitor = Visitor(server, timeout=30)
    host, path = tenant["host"], f"/admin/home/pagecontent/{tenant['page']}/change/"
    title = f"Bench tenant {tenant['number']:05d}: page edited in {run}"
    form = {"title": title, "body": f"Page 1 of {tenant['slug']}, edited.", "ordering": "1",
            "published": "on", "image_alt": ""}  # fmt: skip
    try:
        if not visitor.login(host, f"{tenant['slug']}-member1", PASSWORD):
            return tally.note(tenant, "log-in", "refused")
        answer = visitor.submit(host, path, form)
    except Exception as error:  # a 500 or a page without its form: counted, not raised
        return tally.note(tenant, "edit", repr(error))
    with tally.lock:
        tally.statuses[answer.status] += 1
    if answer.status != 302:
        return tally.note(tenant, "edit", answer.status)
    with tally.lock:
        tally.edits[tenant["number"]] = title
    back = visitor.request(host, "/")
    tally.page(tenant, back)
    if title not in back.text:
        tally.note(tenant, "read back", "the edit is not on the tenant's page")


def run_load(server, site, run: str, rounds: int = READ_ROUNDS, edit_every: int = 1) -> Tally:
    """CLIENTS threads over every tenant: ``rounds`` reads each, half-way one edit of every
    ``edit_every``-th tenant."""
    tally = Tally()
    jobs = [(read, t) for _ in range(rounds // 2) for t in site.tenants]
    jobs += [(edit, t) for t in site.tenants[::edit_every]]
    jobs += [(read, t) for _ in range(rounds - rounds // 2) for t in site.tenants]

    def one(job):
        action, tenant = job
        try:
            action(server, tally, tenant, run) if action is edit else action(server, tally, tenant)
        except OSError as error:  # a timed-out or refused connection
            tally.note(tenant, action.__name__, repr(error))

    with ThreadPoolExecutor(max_workers=CLIENTS) as clients:
        list(clients.map(one, jobs))
    return tally


def assert_isolated(site, tally, server):
    assert tally.summary() == {
        "statuses": {200: tally.statuses[200], 302: len(tally.edits)},
        "foreign pages": 0,
        "wrong-schema pages": 0,
        "failed edit steps": 0,
    }, (tally.foreign[:5], tally.wrong_schema[:5], tally.failed[:5])
    assert site.misplaced_rows() == []
    stored = {t["number"]: [row[2] for row in rows] for t, rows in site.pages_by_keeper()}
    assert all(title in stored[number] for number, title in tally.edits.items())
    assert "Traceback" not in server.log_text(), server.log_text()[-3000:]


def load_through_pooler(site, tmp_path, run, rounds=READ_ROUNDS, edit_every=1, **extra_env):
    server = site.serve(tmp_path, site.through_pooler(**extra_env))
    try:
        tally = run_load(server, site, run, rounds, edit_every)
    finally:
        server.stop()
    assert len(tally.edits) == len(site.tenants[::edit_every]), tally.failed[:5]
    assert_isolated(site, tally, server)


# --- The tests ---------------------------------------------------------------------------------


def test_no_tenant_sees_or_writes_anothers_data_through_the_pooler(site, tmp_path):
    load_through_pooler(site, tmp_path, "pooler")


def test_djangos_own_pool_in_front_of_the_pooler(site, tmp_path):
    load_through_pooler(site, tmp_path, "django pool", rounds=2, edit_every=4, DATABASE_POOL="true")


@pytest.mark.row_only
def test_row_mode_without_row_level_security_through_the_pooler(site, tmp_path):
    """Row mode with TENANCY_ROW_LEVEL_SECURITY=false (Django's own backend, as the owner):
    the row filter alone, no tenant state on the server at all."""
    env = {"TENANCY_ROW_LEVEL_SECURITY": "false", "DATABASE_APP_URL": None}
    load_through_pooler(site, tmp_path, "no rls", rounds=2, edit_every=4, **env)


@pytest.mark.schema_only
def test_control_session_level_search_path_leaks_through_the_pooler(site, tmp_path):
    """Without TENANCY_TRANSACTION_POOLER the schema backend sets search_path for the session:
    through the same pooler, pages are read from other tenants' schemas (the row filter makes
    them look empty), or fail. If this passes no longer, the test above proves nothing."""
    env = site.through_pooler(TENANCY_TRANSACTION_POOLER="false")
    server = site.serve(tmp_path, env)
    try:
        tally = run_load(server, site, "control", rounds=2)
    finally:
        server.stop()
    summary = tally.summary()
    leaks = summary["foreign pages"] + summary["wrong-schema pages"]
    errors = tally.statuses[500] + len(site.misplaced_rows())
    assert leaks + errors > 0, (summary, errors)


def test_sign_up_through_the_pooler(site, tmp_path):
    """A sign-up (schema mode: a spare schema claimed, the pool refilled by the server in the
    background), the new owner's log-in and the welcome email's job run by the worker, all
    through the pooler; no advisory lock is left held afterwards."""
    env = site.through_pooler(TENANCY_SCHEMA_POOL_SIZE="2", TENANCY_SCHEMA_POOL_REFILL="background")
    if SCHEMA_MODE:
        site.drop_spares()
        manage("prepare_tenant_schemas", "--spares", "2", env=env)
        assert site.spares() == 2
    server = site.serve(tmp_path, env)
    try:
        name = f"pooled-{uuid.uuid4().hex[:6]}"
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        answer = server.request(
            "localhost",
            "/api/register/",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
        assert answer.status == 201, answer.text
        page = server.get(f"{name}.localhost", "/")
        assert page.status == 200 and f"{name}&#x27;s site is live" in page.text
        owner = Visitor(server, timeout=30)
        assert owner.login(f"{name}.localhost", name, PASSWORD)
        assert owner.request(f"{name}.localhost", "/admin/home/pagecontent/").status == 200
        assert owner.request(site.tenants[0]["host"], "/admin/").status == 302  # not a member
        if SCHEMA_MODE:
            deadline = time.monotonic() + 60
            while site.spares() < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert site.spares() == 2
            query = "SELECT schema_name FROM tenants_tenant WHERE slug = %s"
            assert site.rows(query, [name]) == [(name.replace("-", "_"),)]
    finally:
        server.stop()
    worker = manage("db_worker", "--batch", "-v", "2", *WORKER_FLAGS, env=env)
    assert f"To: {name}@example.com" in worker.stdout, worker.stdout + worker.stderr
    assert site.advisory_locks() == 0
    assert "Traceback" not in server.log_text(), server.log_text()[-3000:]


@pytest.mark.schema_only
def test_two_fillers_through_the_pooler_make_the_pool_once(site):
    """Two processes topping the spare-schema pool up at once, through the pooler: the
    transaction-level lock lets one spare be counted and made at a time, so together they make
    exactly the pool's size, and leave no lock behind."""
    site.drop_spares()
    env = site.through_pooler()
    with ThreadPoolExecutor(max_workers=2) as both:
        fillers = [
            both.submit(manage, "prepare_tenant_schemas", "--spares", "3", env=env)
            for _ in range(2)
        ]
        [filler.result() for filler in fillers]
    assert site.spares() == 3
    assert site.advisory_locks() == 0


def test_session_advisory_locks_exclude_no_one_behind_the_pooler(site):
    """Why the spare-pool filler takes a transaction-level lock: through a transaction pooler
    two clients share server sessions, so a session-level lock taken by one is held for the
    other too (control); a transaction-level lock does exclude, for as long as it is held."""
    with PgBouncer(site.server_port, pool_size=1) as single:
        url = _with_port(site.direct["DATABASE_URL"], single.port)
        with psycopg.connect(url, autocommit=True) as a, psycopg.connect(url, autocommit=True) as b:
            try:
                assert a.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_KEY]).fetchone()[0]
                assert b.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_KEY]).fetchone()[0]
            finally:
                a.execute("SELECT pg_advisory_unlock_all()")
    url = _with_port(site.direct["DATABASE_URL"], site.bouncer.port)
    with psycopg.connect(url) as a, psycopg.connect(url, autocommit=True) as b:
        assert a.execute("SELECT pg_try_advisory_xact_lock(%s)", [ADVISORY_KEY]).fetchone()[0]
        assert not b.execute("SELECT pg_try_advisory_xact_lock(%s)", [ADVISORY_KEY]).fetchone()[0]
        a.commit()
        assert b.execute("SELECT pg_try_advisory_xact_lock(%s)", [ADVISORY_KEY]).fetchone()[0]


def test_no_session_level_advisory_lock_in_the_platform():
    """Session-level advisory locks are unsafe behind a transaction pooler (above)."""
    session_locks = re.compile(r"pg_(try_)?advisory_lock(_shared)?\s*\(|pg_advisory_unlock")
    found = [
        str(path.relative_to(REPO))
        for folder in ("tenants", "accounts", "home", "devtools")
        for path in (REPO / folder).rglob("*.py")
        if session_locks.search(path.read_text())
    ]
    assert found == []


def test_prepared_statements_are_refused_behind_the_pooler(site):
    """PgBouncer 1.18 cannot carry a prepared statement from one server session to the next:
    the options that would make psycopg prepare statements stop the site from starting."""
    for option in ("server_side_binding=true", "prepare_threshold=5"):
        env = site.through_pooler()
        env["DATABASE_URL"] += f"?{option}"
        done = manage("check", env=env, check=False)
        assert done.returncode != 0, option
        assert "prepared statements do not survive a transaction pooler" in done.stderr
    assert manage("check", env=site.through_pooler(), check=False).returncode == 0


def test_the_checks_can_fail(site):
    """A page showing another tenant's marker, a page without its own, and a row kept for one
    tenant that carries another's are each noticed."""
    a, b = site.tenants[0], site.tenants[1]
    tally = Tally()
    foreign = f"<h2>Bench tenant {a['number']:05d}: page 1</h2> Page 1 of {b['slug']}"
    tally.page(a, Response(200, None, foreign.encode()))
    tally.page(a, Response(200, None, b"No content has been published yet."))
    assert (len(tally.foreign), len(tally.wrong_schema)) == (1, 1)
    table = f'"{a["schema"]}".home_pagecontent' if SCHEMA_MODE else "home_pagecontent"
    site.rows(
        f"INSERT INTO {table} (tenant_id, title, body, ordering, published, updated_at) "
        "VALUES (%s, %s, '', 9, false, now())",
        [a["id"], f"Bench tenant {b['number']:05d}: page misplaced"],
    )
    try:
        assert [row[-1] for row in site.misplaced_rows()] == [
            f"Bench tenant {b['number']:05d}: page misplaced"
        ]
    finally:
        site.rows(f"DELETE FROM {table} WHERE title LIKE '%%: page misplaced'")
    assert site.misplaced_rows() == []
