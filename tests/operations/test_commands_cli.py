"""Operator commands on the real command line: exit codes, messages and help.

No test transaction here (the commands run in other processes and must not wait for one):
only the committed demo tenants are used, and nothing is changed.
"""

import pytest

from tests.support import servers


def _manage(*args):
    env = {"DATABASE_URL": servers.served_database_url()}
    return servers.manage(*args, env=env, check=False, timeout=120)


def test_exit_codes_and_help_on_the_command_line(django_db_setup):
    done = _manage("tenants", "--help")
    assert done.returncode == 0
    for action in ["create", "list", "show", "rename", "delete", "migrate", "run"]:
        assert action in done.stdout
    done = _manage("tenants", "delete", "--help")
    assert done.returncode == 0 and "--drop-schema" in done.stdout and "examples:" in done.stdout
    done = _manage("tenants", "show", "no-such-tenant")
    assert done.returncode == 1 and "No tenant 'no-such-tenant'" in done.stderr
    done = _manage("tenants", "frobnicate")
    assert done.returncode == 2 and "invalid choice" in done.stderr
    done = _manage("domains", "add", "acme", "jcwtradehub.com")
    assert done.returncode == 1 and "belongs to another tenant (jcw-site)" in done.stderr
    done = _manage("tenants", "list", "--json")
    assert done.returncode == 0 and '"slug": "jcw-site"' in done.stdout


@pytest.mark.django_db
def test_the_demo_tenants_these_commands_use_are_there(tenants):
    assert {"acme", "jcw-site"} <= set(tenants)
