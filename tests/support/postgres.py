"""PostgreSQL outside Django's test transaction: databases of a test's own, and plain SQL.

Databases are named by URL (postgres://user@host:port/name); they are made and dropped through
the server's ``postgres`` database.
"""

from urllib.parse import quote

import psycopg
from django.db import connections
from psycopg import sql

from tenants import rls


def server_url(alias: str | None = None) -> str:
    """postgres://user@host:port of the test database's server, without a database name, as
    the role of ``alias``: by default the owner's with row-level security (the site's own role
    may not create databases; a server given it as DATABASE_URL derives its own)."""
    db = connections[alias or rls.owner_alias()].settings_dict
    auth = quote(db.get("USER") or "postgres")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"


def database_url(name: str, alias: str | None = None) -> str:
    """The URL of database ``name`` on the test database's server (as ``alias``'s role)."""
    return f"{server_url(alias)}/{name}"


def postgres_rows(url, query, params=None):
    """Rows of the last statement of ``query`` (several statements allowed without params), on
    a connection of its own to ``url`` (outside Django and its test transaction)."""
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        while cursor.nextset():
            pass
        return cursor.fetchall() if cursor.description else []


def _admin(url):
    server, name = url.rsplit("/", 1)
    return psycopg.connect(f"{server}/postgres", autocommit=True), name


def database_exists(url) -> bool:
    admin, name = _admin(url)
    with admin:
        return bool(
            admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        )


def drop_database(url):
    """Drop the database at ``url`` if it exists, disconnecting whoever is still connected."""
    admin, name = _admin(url)
    with admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def create_database(url):
    """An empty database at ``url``; one already there is dropped first."""
    drop_database(url)
    admin, name = _admin(url)
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
