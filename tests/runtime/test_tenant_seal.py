"""Freezing and sealing one tenant's rows (tenants/seal.py): the trigger on every cell table of
row mode with row-level security. Raw connections (committed, as concurrent processes would
see it), as the application role (``default``) and as the owner (``owner``)."""

from __future__ import annotations

import statistics
import threading
import time

import psycopg
import pytest

from tenants import postgres, rls, seal
from tenants.runtime.unavailable import moved_away
from tests.support.modes import ROW_LEVEL_SECURITY

pytestmark = [
    pytest.mark.skipif(not ROW_LEVEL_SECURITY, reason="row mode on PostgreSQL only"),
    pytest.mark.django_db,
]
TABLES = ("home_pagecontent", "home_sitesettings")
REMOVE_OWN_PAGES = "DELETE FROM home_pagecontent WHERE tenant_id = %s AND title LIKE 'seal-%%'"


def as_tenant(conn, tenant_id):
    conn.execute("SELECT set_config(%s, %s, true)", [rls.SETTING, str(tenant_id)])


def add_page(conn, tenant_id, title):
    """One page of the tenant, in its own transaction, as the site would write it."""
    with conn.transaction():
        as_tenant(conn, tenant_id)
        conn.execute(
            "INSERT INTO home_pagecontent (tenant_id, title, body, ordering, published, "
            "updated_at) VALUES (%s, %s, 'b', 0, true, now())",
            [tenant_id, title],
        )


@pytest.fixture
def two_tenants(tenants):
    ids = (tenants["acme"].pk, tenants["global"].pk)
    yield ids
    with postgres.connect(rls.OWNER) as owner:
        owner.execute(f"DELETE FROM {seal.SEALED_TABLE}")
        owner.execute("DELETE FROM home_pagecontent WHERE title LIKE 'seal-%%'")


def test_every_cell_table_of_a_tenant_has_the_trigger():
    with postgres.connect(rls.OWNER) as owner:
        found = owner.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = %s AND NOT t.tgisinternal ORDER BY 1",
            [seal.TRIGGER],
        ).fetchall()
    assert tuple(name for (name,) in found) == TABLES


def test_a_sealed_tenants_writes_are_refused_and_another_tenants_pass(two_tenants):
    acme, other = two_tenants
    with postgres.connect(rls.OWNER) as owner, postgres.connect("default") as site:
        add_page(site, acme, "seal-before")
        seal.seal(owner, acme, "eu2")
        for write in (
            lambda: add_page(site, acme, "seal-after"),
            lambda: site.execute("UPDATE home_pagecontent SET title = 'x'"),
            lambda: site.execute("DELETE FROM home_pagecontent"),
        ):
            with pytest.raises(psycopg.errors.LockNotAvailable) as refused, site.transaction():
                as_tenant(site, acme)
                write()
            assert moved_away(refused.value)
            assert "eu2" in str(refused.value)
        add_page(site, other, "seal-other")  # the other tenant of the cell writes on
        assert seal.sealed(site, acme) == "eu2" and seal.sealed(site, other) is None


def test_the_site_cannot_unseal_nor_pass_as_the_removal(two_tenants):
    acme, _ = two_tenants
    with postgres.connect(rls.OWNER) as owner, postgres.connect("default") as site:
        add_page(site, acme, "seal-kept")
        seal.seal(owner, acme, "eu2")
        for escape in (
            f"DELETE FROM {seal.SEALED_TABLE}",
            f"UPDATE {seal.SEALED_TABLE} SET tenant_id = 0",
            f"INSERT INTO {seal.SEALED_TABLE} VALUES ({two_tenants[1]}, 'x')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                site.execute(escape)
        with pytest.raises(psycopg.errors.LockNotAvailable), site.transaction():
            as_tenant(site, acme)
            seal.allow_removal(site, acme)  # the setting is not enough: the owner only
            site.execute("DELETE FROM home_pagecontent WHERE title = 'seal-kept'")
        # Without the setting, the owner is refused as well.
        with pytest.raises(psycopg.errors.LockNotAvailable), owner.transaction():
            owner.execute(REMOVE_OWN_PAGES, [acme])
        with owner.transaction():  # the mover removes the old rows
            seal.allow_removal(owner, acme)
            assert owner.execute(REMOVE_OWN_PAGES, [acme]).rowcount == 1


def test_a_writer_waits_out_the_freeze_then_is_refused_others_do_not_wait(two_tenants):
    acme, other = two_tenants
    outcome = {}

    def writer():
        with postgres.connect("default") as site:
            start = time.monotonic()
            try:
                add_page(site, acme, "seal-waiting")
                outcome["acme"] = "written"
            except psycopg.Error as error:
                outcome["acme"] = error
            outcome["waited"] = time.monotonic() - start

    with postgres.connect(rls.OWNER) as owner, postgres.connect("default") as site:
        with owner.transaction():
            seal.freeze(owner, acme)
            thread = threading.Thread(target=writer)
            thread.start()
            start = time.monotonic()
            add_page(site, other, "seal-during")  # not held
            assert time.monotonic() - start < 0.5
            site.execute("SELECT count(*) FROM home_pagecontent")  # readers are not held
            time.sleep(0.8)
            assert "acme" not in outcome  # held
            seal.seal(owner, acme, "eu2")
        thread.join(10)
        assert moved_away(outcome["acme"]), outcome
        assert outcome["waited"] >= 0.7
        count = owner.execute(
            "SELECT count(*) FROM home_pagecontent WHERE title = 'seal-waiting'"
        ).fetchone()
        assert count == (0,)  # never written into the old copy


def test_a_freeze_that_ends_without_a_seal_lets_the_writer_write(two_tenants):
    """The control: the refusal above comes from the seal, not from the lock."""
    acme, _ = two_tenants
    with postgres.connect(rls.OWNER) as owner, postgres.connect("default") as site:
        with owner.transaction():
            seal.freeze(owner, acme)
        add_page(site, acme, "seal-unfrozen")
        assert seal.sealed(owner, acme) is None


def test_the_triggers_cost_on_a_single_row_insert(two_tenants, capsys):
    """Median of single-row insert transactions with the trigger and without it (dropped
    inside a transaction that is rolled back, on the owner's connection)."""
    acme, _ = two_tenants

    def timed(conn, label, n=50):
        times = []
        for i in range(n):
            start = time.perf_counter()
            add_page(conn, acme, f"seal-cost-{label}-{i}")
            times.append(time.perf_counter() - start)
        return times

    on, off = [], []
    with postgres.connect(rls.OWNER) as owner, postgres.connect("default") as site:
        for block in range(6):  # interleaved, so drift of the machine's load hits both
            on += timed(site, f"on{block}")
            owner.execute(f"ALTER TABLE home_pagecontent DISABLE TRIGGER {seal.TRIGGER}")
            try:
                off += timed(site, f"off{block}")
            finally:
                owner.execute(f"ALTER TABLE home_pagecontent ENABLE TRIGGER {seal.TRIGGER}")
    with_trigger, without = statistics.median(on) * 1000, statistics.median(off) * 1000
    with capsys.disabled():
        print(
            f"\nsingle-row insert median: with trigger {with_trigger:.3f} ms, without "
            f"{without:.3f} ms, ratio {with_trigger / without:.2f}"
        )
    assert with_trigger < without * 3 + 1


def test_the_triggers_cost_on_a_bulk_insert_of_10000_rows(two_tenants, capsys):
    """What a tenant's import into a cell pays: 10,000 pages in one statement as the owner,
    with the trigger and without it (each in a transaction rolled back), medians of 5 each."""
    acme, _ = two_tenants
    bulk = (
        "INSERT INTO home_pagecontent (tenant_id, title, body, ordering, published, updated_at) "
        "SELECT %s, 'seal-bulk ' || g, repeat('x', 200), g, false, now() "
        "FROM generate_series(1, 10000) g"
    )
    on, off = [], []
    with postgres.connect(rls.OWNER) as owner:
        for _ in range(5):
            for enabled, times in ((True, on), (False, off)):
                with pytest.raises(Rollback), owner.transaction():
                    if not enabled:
                        owner.execute(
                            f"ALTER TABLE home_pagecontent DISABLE TRIGGER {seal.TRIGGER}"
                        )
                    start = time.perf_counter()
                    assert owner.execute(bulk, [acme]).rowcount == 10000
                    times.append(time.perf_counter() - start)
                    raise Rollback
    with_trigger, without = statistics.median(on) * 1000, statistics.median(off) * 1000
    with capsys.disabled():
        print(
            f"\n10,000-row insert median: with trigger {with_trigger:.0f} ms, without "
            f"{without:.0f} ms, ratio {with_trigger / without:.2f}"
        )
    assert with_trigger < without * 10


class Rollback(Exception):
    pass
