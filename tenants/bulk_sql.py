"""Plain psycopg connections for fleet-wide schema work (migrations, cloning, the upgrade).

Django's connection picks its ``search_path`` from the tenant context and re-sends it when that
changes; bulk work over thousands of schemas wants the opposite: one connection per worker, a
whole schema's statements sent in one round trip, and the schema named explicitly in the
transaction (``SET LOCAL search_path``), so nothing outlives it.
"""

from __future__ import annotations

import psycopg
from django.db import connections
from psycopg import sql

_NOT_FOR_PSYCOPG = ("cursor_factory", "context", "pool")


def connect(alias: str = "default", **kwargs) -> psycopg.Connection:
    """A new autocommit psycopg connection to the database Django's ``alias`` points at."""
    params = connections[alias].get_connection_params()
    for key in _NOT_FOR_PSYCOPG:
        params.pop(key, None)
    return psycopg.connect(**params, autocommit=True, **kwargs)


def connection_url_params(alias: str = "default") -> dict:
    """Host, port, user, password and database name, for client programs such as pg_dump."""
    params = connections[alias].get_connection_params()
    return {k: params.get(k) for k in ("host", "port", "user", "password", "dbname")}


def in_schema(
    schema: str, statements: str, lock_timeout: str | None = None, wait_for_disk: bool = True
) -> str:
    """``statements`` as one transaction whose unqualified names resolve in ``schema`` only.

    ``wait_for_disk=False`` commits without waiting for the WAL flush (synchronous_commit off):
    a crash of the server may then lose the last transactions, whole; the caller makes one
    synchronous commit at the end, which flushes all of them.
    """
    head = sql.SQL("BEGIN;\nSET LOCAL search_path TO {};\n").format(sql.Identifier(schema))
    if not wait_for_disk:
        head += sql.SQL("SET LOCAL synchronous_commit = off;\n")
    if lock_timeout:
        head += sql.SQL("SET LOCAL lock_timeout = {};\n").format(sql.Literal(lock_timeout))
    return head.as_string() + statements + "\nCOMMIT;"


def run_script(conn: psycopg.Connection, script: str) -> None:
    """Send ``script`` (several statements, BEGIN..COMMIT included) in one round trip.

    On an error the transaction is rolled back before the error is raised, so the connection
    can go on with the next schema.
    """
    try:
        conn.execute(script)
    except psycopg.Error:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
        raise


def describe_error(error: BaseException) -> str:
    """One line saying what went wrong, with PostgreSQL's detail when there is one."""
    if isinstance(error, psycopg.Error) and error.diag.message_primary:
        message = error.diag.message_primary
        if error.diag.message_detail:
            message += f" ({error.diag.message_detail})"
        return f"{type(error).__name__}: {message}"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")
