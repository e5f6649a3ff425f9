"""PostgreSQL outside Django's ORM: plain psycopg connections and schema DDL, in one place.

Django's connection picks its ``search_path`` from the tenant context and re-sends it when that
changes; bulk work over thousands of schemas wants the opposite: one connection per worker, a
whole schema's statements sent in one round trip, and the schema named explicitly in the
transaction (``SET LOCAL search_path``), so nothing outlives it. Every ``CREATE``/``DROP``/
``ALTER SCHEMA`` the project sends is written by the functions below: schema names reach SQL
only as quoted identifiers.
"""

from __future__ import annotations

import psycopg
from django.db import connections
from psycopg import sql

_NOT_FOR_PSYCOPG = ("cursor_factory", "context", "pool")


def connect(
    alias: str = "default", *, database: str | None = None, autocommit: bool = True, **kwargs
) -> psycopg.Connection:
    """A new psycopg connection to the database Django's ``alias`` points at, or to another
    ``database`` on the same server (``"postgres"`` to create or look for a database)."""
    params = connections[alias].get_connection_params()
    for key in _NOT_FOR_PSYCOPG:
        params.pop(key, None)
    if database is not None:
        params["dbname"] = database
    return psycopg.connect(**{**params, **kwargs}, autocommit=autocommit)


def connect_url(url: str, **kwargs) -> psycopg.Connection:
    """A new psycopg connection to a database given by a ``DATABASE_URL``-style URL."""
    import environ

    config = environ.Env.db_url_config(url)
    params = {
        "dbname": config["NAME"],
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
    }
    return psycopg.connect(**{k: v for k, v in params.items() if v is not None}, **kwargs)


def database_exists(name: str, alias: str = "default") -> bool:
    """Whether the server of ``alias`` has a database called ``name``."""
    with connect(alias, database="postgres", connect_timeout=10) as admin:
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return found.fetchone() is not None


# --- Schema DDL ----------------------------------------------------------------------------------


def create_schema_sql(name: str) -> str:
    return sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)).as_string()


def drop_schema_sql(name: str, *, if_exists: bool = False) -> str:
    """``DROP SCHEMA ... CASCADE``: the schema and everything in it."""
    statement = "DROP SCHEMA IF EXISTS {} CASCADE" if if_exists else "DROP SCHEMA {} CASCADE"
    return sql.SQL(statement).format(sql.Identifier(name)).as_string()


def rename_schema_sql(old: str, new: str) -> str:
    return (
        sql.SQL("ALTER SCHEMA {} RENAME TO {}")
        .format(sql.Identifier(old), sql.Identifier(new))
        .as_string()
    )


def schema_exists(cursor, name: str) -> bool:
    """Whether schema ``name`` exists, asked on ``cursor`` (Django's or psycopg's)."""
    cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s)", [name])
    return cursor.fetchone()[0]


def existing_schemas(cursor, names: list[str]) -> set[str]:
    """Which of ``names`` are existing schemas, asked on ``cursor`` (Django's or psycopg's)."""
    cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", [list(names)])
    return {row[0] for row in cursor.fetchall()}


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
