"""Fail fast, and say how to fix it, when the PostgreSQL the tests need is down.

Also ends sessions left connected to the *test* database (test_<name>) by an interrupted run,
which would otherwise stop pytest-django from recreating it.
"""

import sys
import time

import psycopg

URL = sys.argv[1]
SERVER, NAME = URL.rsplit("/", 1)
DEADLINE = time.monotonic() + 30

while True:
    try:
        with psycopg.connect(SERVER + "/postgres", connect_timeout=3, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                [f"test_{NAME}"],
            )
            break
    except psycopg.OperationalError as error:
        if time.monotonic() > DEADLINE:
            sys.exit(
                f"PostgreSQL is not reachable at {URL}: {error}\n"
                "Schema-mode tests need it. Start it with:\n"
                "  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"
                "or point TEST_POSTGRES_URL at a server you can use."
            )
        time.sleep(1)
