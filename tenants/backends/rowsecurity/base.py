"""Row mode's PostgreSQL backend with row-level security: Django's, plus the current tenant
sent with every statement as the transaction-local setting the policies read.

Every statement goes out as ``SET LOCAL tenancy.tenant_id = '42'; <it>`` (no
tenant: ``''``, which no row matches), one message, one round trip
(``tenants.backends.transaction_state``): nothing outlives the statement's transaction, so it
is right behind a transaction pooler too, and a pooled connection never carries one request's
tenant into the next. The policies are ``tenants.rls``'s; why and what they stop:
docs/row-level-security.md.

Two aliases use this engine: ``default``, the application role, which sends the tenant, and
``owner`` (``tenants.rls.OWNER``), which owns the tables, bypasses the policies, and sends
nothing. The first connection of a process as the application role checks that the policies
hold for it (not a superuser, no ``BYPASSRLS``, owns no tenant table, every tenant table has its
forced policy) and refuses to go on otherwise: a misconfigured deployment fails at once instead
of silently serving without the second wall.
"""

from __future__ import annotations

import functools

import psycopg
from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base as postgresql

from tenants import rls
from tenants.backends.rowsecurity.creation import DatabaseCreation
from tenants.backends.transaction_state import TransactionStateMixin
from tenants.cellconfig import CELL_PREFIX, is_owner_alias
from tenants.cells import alias_of
from tenants.runtime.context import current_tenant, no_tenant

_verified: set[tuple] = set()  # (host, port, database, user) whose isolation was checked


class DatabaseWrapper(TransactionStateMixin, postgresql.DatabaseWrapper):
    creation_class = DatabaseCreation

    def __init__(self, settings_dict, alias="default", *args, **kwargs):
        # The owner, and Django's connections to the server's maintenance database, send none.
        # (A cell's owner alias, cell_<name>_owner, is an owner too: tenants.cellconfig.)
        self.transaction_state = alias != NO_DB_ALIAS and not is_owner_alias(alias)
        # A cell's own connection (tenants.cells) serves the tenants of that cell only.
        self.cell = alias.startswith(CELL_PREFIX) and self.transaction_state
        super().__init__(settings_dict, alias, *args, **kwargs)

    def tenant_state(self):
        """``SET LOCAL tenancy.tenant_id = ...; `` for the current tenant."""
        tenant = current_tenant()
        if tenant is None:
            return _NO_TENANT
        if self.cell and alias_of(tenant) != self.alias:
            # Not this cell's tenant: the policies see no tenant and admit no row (fail closed).
            # Not an error: the connection pool's health check on checkout runs in whatever
            # tenant's context the request has (the platform's, for a sign-up placed here).
            return _NO_TENANT
        return _tenant_state(tenant.id)

    def is_usable(self):
        """Django's health check (``SELECT 1``), without the tenant state: it reads no table,
        and the request's first query would otherwise pay for a second ``SET LOCAL``."""
        if self.connection is None:
            return False
        try:
            with psycopg.ClientCursor(self.connection) as cursor:  # as Django's, unprefixed
                cursor.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def init_connection_state(self):
        super().init_connection_state()
        if self.transaction_state:
            self._verify_isolation()

    def _verify_isolation(self):
        params = self.settings_dict
        key = (params["HOST"], params["PORT"], params["NAME"], params["USER"])
        if key in _verified:
            return
        # Whatever tenant is active (a cell's first connection may open in the platform's
        # context, during a sign-up placed there): the check is about the role, not a tenant.
        with no_tenant(), self.connection.cursor() as cursor:
            problems = rls.isolation_problems(cursor)
        if problems:
            raise ImproperlyConfigured(
                f"Row-level security would not hold for the database role {params['USER']!r} "
                f"of alias {self.alias!r}: {'; '.join(problems)}. The site must connect as a "
                "role that neither owns the tables nor bypasses row-level security, on a "
                "database migrated with TENANCY_ROW_LEVEL_SECURITY on "
                "(docs/row-level-security.md)."
            )
        _verified.add(key)


def _state_sql(value: str) -> str:
    # SET LOCAL, not SELECT set_config(..., true): the same effect, a third less server CPU per
    # statement (docs/benchmarks.md#row-level-security), and no result row for psycopg to skip.
    return f"SET LOCAL {rls.SETTING} = '{value}'; "


_NO_TENANT = (_state_sql(""), 1, True)


@functools.lru_cache(maxsize=100_000)
def _tenant_state(tenant_id: int) -> tuple[str, int, bool]:
    return _state_sql(str(int(tenant_id))), 1, False
