"""A fleet of cells for tests: two private PostgreSQL clusters (cells ``eu1`` and ``eu2``,
tests/support/services.py) beside a control database of the test's own on the usual server,
migrated and seeded with the demo tenants, and a real server process with ``TENANCY_CELLS``.
Every check of where data lives is SQL on each server (``Fleet.url(cell)``)."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager

from tests.support.postgres import create_database, database_url, drop_database, postgres_rows
from tests.support.servers import RUNSERVER, manage, start_server
from tests.support.services import PostgresCluster

CELLS = ("eu1", "eu2")
PASSWORD = "a-good-passphrase-42"


class Fleet:
    def __init__(self, control_url, clusters, env, server, prepared=""):
        self.control_url = control_url
        self.clusters = clusters  # cell name -> PostgresCluster
        self.env = env
        self.server = server
        self.prepared = prepared  # what ensure_database printed

    def url(self, cell: str) -> str:
        return self.control_url if cell == "default" else self.clusters[cell].url("tenantsite")

    def tenants(self) -> dict[str, tuple[str, str]]:
        """slug -> (schema, cell) from the control database's map."""
        rows = postgres_rows(self.control_url, "SELECT slug, schema_name, cell FROM tenants_tenant")
        return {slug: (schema, cell or "default") for slug, schema, cell in rows}

    def schemas(self, cell: str) -> set[str]:
        rows = postgres_rows(self.url(cell), "SELECT nspname FROM pg_namespace")
        return {name for (name,) in rows}

    def manage(self, *args, check=True):
        return manage(*args, env=self.env, check=check)


@contextmanager
def cell_fleet(name, media_root, *, mode="schema", server_command=None, fleet_class=Fleet):
    """The fleet, its control database named after this run's test database and ``name``;
    row mode runs with row-level security (the control URL is the owner's, the site's role
    connects as the app role). Everything is removed on exit."""
    stem = os.environ.get("TEST_DATABASE_NAME") or "test_tenantsite"
    control = f"{stem}_{name}_control"
    control_url = database_url(control) if mode == "row" else database_url(control, "default")
    create_database(control_url)
    clusters = {}
    try:
        for cell in CELLS:  # one after the other: each takes the first free port
            clusters[cell] = PostgresCluster()
            clusters[cell].start()
        env = {
            "TENANCY_MODE": mode,
            "DATABASE_URL": control_url,
            "TENANCY_CELLS": ",".join(f"{c}={clusters[c].url('tenantsite')}" for c in CELLS),
            "TENANCY_RESOLVER_REVALIDATE_SECONDS": "0",
            "MEDIA_ROOT": str(media_root),
        }
        if mode == "row":
            env["DATABASE_APP_URL"] = database_url(control, "default")
        else:
            env.update(TENANCY_SCHEMA_POOL_SIZE="1", TENANCY_SCHEMA_POOL_REFILL="command")
        prepared = manage("ensure_database", env=env).stdout
        manage("tenants", "migrate", env=env)
        manage("seed_demo_tenants", env=env)
        if mode == "schema":
            manage("prepare_tenant_schemas", env=env)
        server = start_server(server_command or RUNSERVER, env=env)
        try:
            yield fleet_class(control_url, clusters, env, server, prepared)
        finally:
            server.stop()
    finally:
        for cluster in clusters.values():
            cluster.__exit__(None, None, None)
        drop_database(control_url)


def sign_up(server, username):
    """``POST /api/register/`` on the platform's host of ``server``."""
    body = json.dumps(
        {
            "username": username,
            "email": f"{username}@example.com",
            "password": PASSWORD,
            "site_name": f"{username} site",
        }
    ).encode()
    return server.request(
        "localhost", "/api/register/", data=body, headers={"Content-Type": "application/json"}
    )
