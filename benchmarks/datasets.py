"""The benchmark databases: many tenants, made fast, and kept between runs.

Each database records what it holds in a ``bench_dataset`` table written last, so a run reuses
a complete one and rebuilds anything else (an older layout, a build that was interrupted).

* ``plain``: the plain-Django baseline, one site with the pages every tenant has.
* ``row``: the product in row mode, N tenants inserted in bulk (tenants, domains, pages).
* ``schema``: the product in schema mode. One tenant schema is made the product's way (by its
  migrations); the others are clones of its DDL and data (pg_dump of that schema, renamed,
  replayed by psql), then their pages are pointed at their own tenant.
* ``djt``: django-tenants' stock setup, its schemas cloned the same way.

Every tenant has the same pages, so a request costs the same whichever tenant it is for.
Functions here run inside a worker process whose Django settings match the dataset.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

DATASET_VERSION = 4  # 2: SiteSettings / Branding tables; 3: tenant column without FK constraint;
# 4: tenant column without an index of its own
PAGES = [
    {
        "title": "What we do",
        "body": "We design, build and look after things our customers rely on every day. "
        "Ask us about a quote; most projects start within two weeks of a first call.",
    },
    {
        "title": "Our team",
        "body": "Twelve people in three offices, working with customers in more than twenty "
        "countries. We answer every message within one working day.",
    },
    {
        "title": "Contact",
        "body": "Write to us or call during office hours. Visitors are welcome by appointment; "
        "parking is available behind the building.",
    },
]
PLAIN_SITE_NAME = "Plain Site 0"
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/tenantsite"


def postgres_server_url() -> str:
    """The PostgreSQL server (and name prefix) of the benchmark databases: BENCH_POSTGRES_URL,
    else the tests' TEST_POSTGRES_URL, else the local default."""
    return (
        os.environ.get("BENCH_POSTGRES_URL")
        or os.environ.get("TEST_POSTGRES_URL")
        or DEFAULT_POSTGRES
    )


def tenant_slug(i: int) -> str:
    return f"t{i:05d}"


def tenant_name(i: int) -> str:
    return f"Tenant {i:05d}"


def sites(kind: str, tenants: int) -> list[tuple[str, str]]:
    """(host, site name shown on its home page) for every site the benchmark requests."""
    if kind == "plain":
        return [("localhost", PLAIN_SITE_NAME)]
    return [(f"{tenant_slug(i)}.localhost", tenant_name(i)) for i in range(1, tenants + 1)]


def ensure(kind: str, tenants: int, rebuild: bool = False) -> bool:
    """Make the database named by settings hold ``kind`` with ``tenants``; True if it was built."""
    from django.conf import settings
    from django.db import connections

    from tenants import rls

    # With row-level security the owner's connection builds it (the site's may not create).
    spec = f"{kind}:{tenants}:v{DATASET_VERSION}" + (":rls" if rls.enabled() else "")
    db = settings.DATABASES[rls.owner_alias()]
    postgres = connections[rls.owner_alias()].vendor == "postgresql"
    if not rebuild and _recorded_spec(db, postgres) == spec:
        return False
    _recreate_database(db, postgres)
    {"plain": _build_plain, "row": _build_row, "schema": _build_schema, "djt": _build_djt}[kind](
        tenants
    )
    with connections[rls.owner_alias()].cursor() as cursor:
        cursor.execute("CREATE TABLE bench_dataset (spec varchar(100))")
        cursor.execute("INSERT INTO bench_dataset (spec) VALUES (%s)", [spec])
    connections.close_all()
    return True


# --- the database itself ------------------------------------------------------------------------


def _recorded_spec(db, postgres: bool) -> str | None:
    if postgres:
        import psycopg

        try:
            with psycopg.connect(_libpq_url(db), autocommit=True) as conn:
                row = conn.execute("SELECT spec FROM public.bench_dataset").fetchone()
        except psycopg.Error:
            return None
    else:
        if not os.path.exists(db["NAME"]):
            return None
        try:
            with sqlite3.connect(db["NAME"]) as conn:
                row = conn.execute("SELECT spec FROM bench_dataset").fetchone()
        except sqlite3.Error:
            return None
    return row[0] if row else None


def _recreate_database(db, postgres: bool) -> None:
    if not postgres:
        os.makedirs(os.path.dirname(db["NAME"]) or ".", exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal"):
            if os.path.exists(db["NAME"] + suffix):
                os.remove(db["NAME"] + suffix)
        return
    import psycopg
    from psycopg import sql

    name = db["NAME"]
    if "bench" not in name:
        raise SystemExit(f"refusing to drop database {name!r}: benchmark databases have 'bench'")
    with psycopg.connect(_libpq_url(db, dbname="postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _libpq_url(db, dbname: str | None = None) -> str:
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgresql://{auth}{host}{port}/{dbname or db['NAME']}"


def database_url_with_name(url: str, name: str) -> str:
    """``url`` with its database name replaced."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


# --- builders -----------------------------------------------------------------------------------


def _migrate() -> None:
    from django.core.management import call_command

    from tenants import rls

    if rls.enabled():
        call_command("ensure_database", verbosity=0)  # the site's role, if missing
    call_command("migrate", verbosity=0, interactive=False)


def _build_plain(tenants: int) -> None:
    from benchmarks.plain.models import Page

    _migrate()
    Page.objects.bulk_create(Page(ordering=n, **p) for n, p in enumerate(PAGES, 1))


def _build_row(tenants: int) -> None:
    from devtools.demo import DEMO_TENANTS
    from home.models import PageContent
    from tenants.provisioning.services import create_tenant
    from tenants.rls import owner_alias
    from tenants.runtime.context import scopes_disabled

    _migrate()
    create_tenant(**DEMO_TENANTS[0])  # the default tenant: the platform's site, on localhost
    made = _bulk_tenants(range(1, tenants + 1))
    with scopes_disabled():  # every tenant's pages at once: the owner's connection
        PageContent.objects.using(owner_alias()).bulk_create(
            (PageContent(tenant=t, ordering=n, **p) for t in made for n, p in enumerate(PAGES, 1)),
            batch_size=2000,
        )


def _bulk_tenants(numbers) -> list:
    """Tenants ``numbers`` with their primary domains, inserted in bulk (no schemas, no pages)."""
    from tenants.models import Domain, Tenant

    made = Tenant.objects.bulk_create(
        (
            Tenant(name=tenant_name(i), slug=tenant_slug(i), schema_name=tenant_slug(i))
            for i in numbers
        ),
        batch_size=2000,
    )
    Domain.objects.bulk_create(
        (Domain(domain=f"{t.slug}.localhost", tenant=t, is_primary=True) for t in made),
        batch_size=2000,
    )
    return made


def _build_schema(tenants: int) -> None:
    from django.db import connection

    from devtools.demo import DEMO_TENANTS
    from tenants.provisioning.services import create_tenant

    _migrate()
    create_tenant(**DEMO_TENANTS[0])  # the default tenant lives in public
    template = create_tenant(
        name=tenant_name(1), slug=tenant_slug(1), domain=f"{tenant_slug(1)}.localhost", pages=PAGES
    ).tenant
    made = _bulk_tenants(range(2, tenants + 1))
    connection.close()
    _clone_schemas(
        template.schema_name,
        [t.schema_name for t in made],
        # the cloned pages still point at the template's tenant row: point them at their own
        after={
            t.schema_name: f"UPDATE {t.schema_name}.home_pagecontent SET tenant_id = {t.pk};"
            for t in made
        },
    )


def _build_djt(tenants: int) -> None:
    from django.db import connection
    from django_tenants.utils import schema_context

    from benchmarks.djt.models import Client, Domain
    from benchmarks.plain.models import Page

    _migrate()
    public = Client.objects.create(schema_name="public", name="Public")
    Domain.objects.create(domain="localhost", tenant=public, is_primary=True)
    template = Client.objects.create(schema_name=tenant_slug(1), name=tenant_name(1))
    template.create_schema(check_if_exists=False, verbosity=0)
    Domain.objects.create(domain=f"{tenant_slug(1)}.localhost", tenant=template, is_primary=True)
    with schema_context(template.schema_name):
        Page.objects.bulk_create(Page(ordering=n, **p) for n, p in enumerate(PAGES, 1))
    made = Client.objects.bulk_create(
        (Client(schema_name=tenant_slug(i), name=tenant_name(i)) for i in range(2, tenants + 1)),
        batch_size=2000,
    )
    Domain.objects.bulk_create(
        (Domain(domain=f"{t.schema_name}.localhost", tenant=t, is_primary=True) for t in made),
        batch_size=2000,
    )
    connection.close()
    _clone_schemas(template.schema_name, [t.schema_name for t in made])


def _clone_schemas(template: str, names: list[str], after: dict[str, str] | None = None) -> None:
    """Create schemas ``names`` as copies (tables, indexes, constraints, rows) of ``template``.

    One transaction per batch of schemas: a single one for all would hold more locks than
    the server's lock table has room for.
    """
    from django.conf import settings

    if not names:
        return
    url = _libpq_url(settings.DATABASES["default"])
    dump = subprocess.run(
        ["pg_dump", "--dbname", url, "--schema", template, "--rows-per-insert=1000", "--no-owner"]
        + ["--no-privileges", "--no-comments"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # psql meta-commands (\restrict in recent pg_dump) and session SETs are not per-schema DDL
    body = "\n".join(
        line
        for line in dump.splitlines()
        if not line.startswith(("\\", "SET ", "SELECT pg_catalog.set_config"))
    )
    pattern = re.compile(rf"\b{re.escape(template)}\b")
    started = time.monotonic()
    chunks = ["SET client_min_messages = warning;", "SET synchronous_commit = off;"]
    for start in range(0, len(names), 20):
        chunks.append("BEGIN;")
        for name in names[start : start + 20]:
            chunks.append(pattern.sub(name, body))
            chunks.append((after or {}).get(name, ""))
        chunks.append("COMMIT;")
    subprocess.run(
        ["psql", url, "--quiet", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "--output", "/dev/null"],
        input="\n".join(chunks),
        check=True,
        text=True,
    )
    print(
        f"  cloned {len(names)} schemas from {template} in {time.monotonic() - started:.0f} s",
        file=sys.stderr,
    )
