"""Spare tenant schemas, made ahead of time and renamed when a tenant claims one (schema mode).

Creating a schema with all its relations is slow however it is done; renaming one is not
(docs/benchmarks.md, provisioning). So a few spare schemas, made by the template script
(``tenants.provisioning.schema_template``), wait under names like ``_spare_<fingerprint>_<random>``:

* :func:`claim` takes one inside the caller's transaction: a non-blocking advisory lock per
  spare keeps concurrent claimers apart, and ``ALTER SCHEMA ... RENAME`` is transactional, so a
  rolled-back sign-up puts the spare back, its rows as they were. Not its sequences:
  ``nextval`` is never rolled back, so the claim also sets every sequence back to where the
  migrations left it (one ``setval`` each, in the same round trip).
* :func:`fill` tops the pool up to ``TENANCY_SCHEMA_POOL_SIZE``, one committed spare at a
  time, one filler per database (a transaction-level advisory lock: safe behind PgBouncer).
  It runs in a background thread of the process that claimed a spare
  (``TENANCY_SCHEMA_POOL_REFILL = "background"``) or from
  ``manage.py prepare_tenant_schemas`` (cron, deploys).

The fingerprint in the name means spares made for other migrations are never claimed;
:func:`drop_stale` removes them. Names starting with ``_`` can never be a tenant's (slugs start
with a letter), so spares and templates never clash with tenants.
"""

from __future__ import annotations

import logging
import threading
import uuid

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from psycopg import sql

from tenants import postgres
from tenants.provisioning import schema_template
from tenants.runtime.context import no_tenant

logger = logging.getLogger(__name__)

SPARE_PREFIX = "_spare_"
_FILL_LOCK_KEY = schema_template.advisory_key("tenants.provisioning.schema_pool.fill")


def pool_size() -> int:
    return int(settings.TENANCY_SCHEMA_POOL_SIZE)


def spare_prefix(fingerprint: str | None = None) -> str:
    return f"{SPARE_PREFIX}{fingerprint or schema_template.migrations_fingerprint()}_"


def spare_names(using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Spare schemas ready for the current code, in database ``using`` (a cell's alias)."""
    prefix = spare_prefix()
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname > %s AND nspname < %s ORDER BY nspname",
            [prefix, prefix + "~"],
        )
        return [row[0] for row in cursor.fetchall()]


# One round trip: try the spares in random order, skip those another transaction holds (a
# non-blocking advisory lock) or has claimed and committed since the scan (to_regnamespace reads
# the catalog as it is now, not as the scan saw it), rename the first one left and say which
# (a transaction-local setting, read by the SELECT that follows). The claimed schema's sequences
# are then reset: a spare that a rolled-back sign-up used has them moved on.
_CLAIM_SQL = """
DO $claim$
DECLARE
    spare text;
BEGIN
    PERFORM set_config('tenants.claimed_spare', '', true);
    FOR spare IN
        SELECT nspname FROM pg_namespace WHERE nspname > {low} AND nspname < {high}
        ORDER BY random()
    LOOP
        IF pg_try_advisory_xact_lock(hashtextextended(spare, 0))
           AND to_regnamespace(quote_ident(spare)) IS NOT NULL THEN
            EXECUTE format('ALTER SCHEMA %I RENAME TO %I', spare, {target});
            IF {reset} <> '' THEN
                EXECUTE {reset};
            END IF;
            PERFORM set_config('tenants.claimed_spare', spare, true);
            RETURN;
        END IF;
    END LOOP;
END
$claim$;
SELECT current_setting('tenants.claimed_spare') <> ''
"""


def claim(schema_name: str, using: str = DEFAULT_DB_ALIAS) -> bool:
    """Rename a spare schema to ``schema_name`` in the current transaction; False if none.

    The spare's sequences are set to the template's values, so the schema is exactly what the
    migrations give even if a rolled-back transaction used it before.
    """
    try:
        script = schema_template.current_script()
    except schema_template.UnsupportedTemplate:
        return False  # the caller falls back to the migrations
    prefix = spare_prefix(script.fingerprint)
    query = sql.SQL(_CLAIM_SQL).format(
        low=sql.Literal(prefix),
        high=sql.Literal(prefix + "~"),
        target=sql.Literal(schema_name),
        reset=sql.Literal(script.reset_sequences(schema_name)),
    )
    with connections[using].cursor() as cursor:
        cursor.execute(query.as_string())
        cursor.nextset()
        return cursor.fetchone()[0]


def create_spare(using: str = DEFAULT_DB_ALIAS) -> str:
    """Make one spare schema from the template script and commit it; returns its name."""
    script = schema_template.current_script()
    with no_tenant(), transaction.atomic(using=using), connections[using].cursor() as cursor:
        return _make_spare(cursor, script)


def _make_spare(cursor, script) -> str:
    name = f"{spare_prefix(script.fingerprint)}{uuid.uuid4().hex[:16]}"
    cursor.execute(postgres.create_schema_sql(name) + ";\n" + script.render(name))
    return name


def fill(target: int | None = None, using: str = DEFAULT_DB_ALIAS) -> int:
    """Create spares in database ``using`` until ``target`` (default: the pool size) are ready;
    returns how many.

    One filler per database at a time: each spare is counted and made in a transaction of its
    own that holds a transaction-level advisory lock. If another process holds it, this returns
    at once: that process counts the pool again under the lock before each spare, so spares
    claimed while it works are replaced too, and two fillers never overshoot the target. Not a
    session-level lock: behind a transaction pooler (PgBouncer) consecutive statements may run on
    different server sessions, so a session lock could be left held by a server session that
    other clients then share (it excludes no one and is never released).
    """
    target = pool_size() if target is None else target
    created = 0
    # Bounded, in case sign-ups claim spares as fast as they are made.
    while created < 3 * target and _create_spare_if_short(target, using):
        created += 1
    return created


def _create_spare_if_short(target: int, using: str) -> bool:
    """Make and commit one spare if fewer than ``target`` are ready and no other process is
    filling the pool (a transaction-level advisory lock); whether it made one."""
    if len(spare_names(using)) >= target:  # the common case, without a transaction or a script
        return False
    script = schema_template.current_script()
    with no_tenant(), transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_FILL_LOCK_KEY])
        if not cursor.fetchone()[0] or len(spare_names(using)) >= target:
            return False
        _make_spare(cursor, script)
    return True


def drop_stale(using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Drop templates and spares made for other code (another migrations fingerprint)."""
    current = {schema_template.template_schema_name(), spare_prefix()}
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s) "
            "OR starts_with(nspname, %s) ORDER BY nspname",
            [schema_template.TEMPLATE_PREFIX, SPARE_PREFIX],
        )
        names = [row[0] for row in cursor.fetchall()]
    dropped = []
    for name in names:
        if name in current or name.startswith(spare_prefix()):
            continue
        with transaction.atomic(using=using), connections[using].cursor() as cursor:
            # A spare being claimed right now is locked: leave it to its claimer.
            cursor.execute("SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))", [name])
            if not cursor.fetchone()[0]:
                continue
            cursor.execute(postgres.drop_schema_sql(name, if_exists=True))
        dropped.append(name)
    return dropped


# --- Background refill ---------------------------------------------------------------------------


class _Refiller:
    """One daemon thread per process that refills the pool when asked (after a claim)."""

    def __init__(self):
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._aliases: set[str] = set()  # databases (cells) whose pool lost a spare

    def request(self, using: str = DEFAULT_DB_ALIAS) -> None:
        if settings.TENANCY_SCHEMA_POOL_REFILL != "background" or pool_size() <= 0:
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="tenant-schema-pool", daemon=True
                )
                self._thread.start()
            self._aliases.add(using)
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                aliases, self._aliases = self._aliases, set()
            try:
                for alias in sorted(aliases):
                    fill(using=alias)
            except Exception:
                logger.exception("Refilling the spare tenant schema pool failed")
            finally:
                connections.close_all()  # this thread's own connection


_refiller = _Refiller()


def request_refill_on_commit(using: str = DEFAULT_DB_ALIAS) -> None:
    """Once the current transaction commits, have this process top the pool of database
    ``using`` up (background). Each cell has a pool of its own."""
    if settings.TENANCY_SCHEMA_POOL_REFILL == "background" and pool_size() > 0:
        transaction.on_commit(lambda: _refiller.request(using), using=using)
