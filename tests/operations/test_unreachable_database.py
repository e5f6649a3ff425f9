"""A command whose database cannot be reached says so in one line (issue 14, item 2)."""

import pytest
from django.conf import settings

from tests.support.servers import free_port, manage


@pytest.mark.parametrize(
    "url",
    [
        "postgres://postgres@127.0.0.1:{port}/nowhere",  # nothing listens there
        "sqlite:////nonexistent-directory/db.sqlite3",
    ],
)
@pytest.mark.parametrize("command", [["seed_demo_tenants"], ["migrate"], ["tenants", "list"]])
def test_an_unreachable_database_is_one_line_not_a_traceback(url, command):
    mode = "row" if url.startswith("sqlite") else settings.TENANCY_MODE
    env = {"DATABASE_URL": url.format(port=free_port()), "TENANCY_MODE": mode}
    done = manage(*command, env=env, check=False)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "database" in lines[0].lower()
