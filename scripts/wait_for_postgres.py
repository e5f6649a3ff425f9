"""Fail fast, and say how to fix it, when the PostgreSQL the schema-mode tests need is down."""

import sys
import time

import psycopg

URL = sys.argv[1]
DEADLINE = time.monotonic() + 30

while True:
    try:
        with psycopg.connect(URL.rsplit("/", 1)[0] + "/postgres", connect_timeout=3):
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
