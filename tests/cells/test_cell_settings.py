"""TENANCY_CELLS is refused where cells cannot work (every pass: these are new processes)."""

import pytest

from tests.support.servers import manage


@pytest.mark.parametrize(
    ("mode", "url", "message"),
    [
        ("row", "sqlite:///db-cells-refused.sqlite3", "TENANCY_CELLS needs PostgreSQL"),
        ("schema", "postgres://postgres@127.0.0.1:5432/x", "cell name 'Bad!'"),
    ],
)
def test_cells_are_refused_where_they_cannot_work(mode, url, message):
    cells = "Bad!=postgres://h/x" if "Bad" in message else "eu1=postgres://127.0.0.1:1/x"
    env = {"TENANCY_MODE": mode, "DATABASE_URL": url, "TENANCY_CELLS": cells}
    done = manage("check", env=env, check=False)
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and message in done.stderr, done.stderr[-800:]
