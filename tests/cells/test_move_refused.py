"""``tenants move`` where there is nothing to move between: in row mode (and on SQLite) it is
refused, and in schema mode without ``TENANCY_CELLS`` every cell but ``default`` is unknown.
Nothing is touched: the tenant keeps its data where it was. (Moves themselves: test_move.py.)"""

from __future__ import annotations

from django.conf import settings

from tests.support import servers


def _move(*args):
    return servers.manage("tenants", "move", *args, env=servers.on_test_database(), check=False)


def test_a_move_without_cells_is_refused_and_touches_nothing(django_db_setup):
    done = _move("acme", "--to", "eu1")
    assert done.returncode == 1, done.stdout + done.stderr
    if settings.TENANCY_MODE == "schema":
        assert "No cell 'eu1'" in done.stderr, done.stderr
    else:
        assert "Moves are for schema mode" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    shown = servers.manage("tenants", "show", "acme", env=servers.on_test_database())
    assert "acme" in shown.stdout
    missing = _move("no-such-tenant", "--to", "default")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
