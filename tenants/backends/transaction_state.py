"""Tenant state sent with every statement, so it never outlives the statement's transaction.

A database backend keeps what the current tenant needs on the server in one of two ways:

* **session** (schema mode on a direct connection, the default): ``SET search_path`` once for
  the server session, remembered, sent again only when it has to change;
* **transaction** (``TENANCY_TRANSACTION_POOLER``, and row-level security): nothing is ever set
  for the session. Every statement is sent with what the current tenant needs as
  transaction-local settings, in the same message and so the same round trip::

      SET LOCAL search_path = "acme"; SET LOCAL tenancy.tenant_id = '42'; <it>

  Django's psycopg cursors bind parameters on the client, so this goes out as one
  simple-protocol message, which PostgreSQL runs as one transaction when no transaction is open
  (autocommit) and as part of the open one otherwise. The settings end with that transaction.
  A transaction pooler (PgBouncer, ``pool_mode=transaction``) may run each transaction on a
  different server connection: none of them ever holds one tenant's state when the next
  client's transaction arrives, and none of our statements runs without its own.

Every statement carries the state, even within one transaction, so nothing has to be
remembered or forgotten at commit, rollback or ``ROLLBACK TO SAVEPOINT``; no tenant sends the
platform's state (the public schema, no tenant id), so a no-tenant block inside a tenant's
transaction is not that tenant's. docs/decisions/ explains the choice; the cost is in
docs/benchmarks.md.
"""

from __future__ import annotations

import re

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.postgresql.base import Cursor as DjangoCursor

# Transaction control needs no tenant state, and must work in a failed transaction, where the
# prefix itself would be refused ("current transaction is aborted").
_TRANSACTION_CONTROL = re.compile(
    r"\s*(SAVEPOINT|RELEASE|ROLLBACK|COMMIT|BEGIN|START\s+TRANSACTION|END|ABORT)\b",
    re.IGNORECASE,
)
# A few statements refuse to run inside a transaction block, which a prefixed statement is.
# They are sent as they are when the platform's state is wanted, and refused under a tenant.
_NOT_IN_A_TRANSACTION = re.compile(
    r"\s*(VACUUM|CLUSTER|ALTER\s+SYSTEM|(CREATE|DROP)\s+DATABASE|(CREATE|DROP)\s+INDEX\s+"
    r"CONCURRENTLY|REINDEX\b.*\bCONCURRENTLY)\b",
    re.IGNORECASE | re.DOTALL,
)


class TenantStateRefused(RuntimeError):
    """A statement that cannot run in a transaction was sent while a tenant is active."""


class TenantStateCursor(DjangoCursor):
    """Django's client-side-binding cursor that sends each statement with the tenant state.

    The backend puts ``_tenancy_state`` on each psycopg connection it hands out: a callable
    returning ``(prefix, statements in it, is the platform's state)`` for the current context.
    """

    def execute(self, query, params=None, **kwargs):
        state = getattr(self.connection, "_tenancy_state", None)
        if state is None:  # a pooled connection being set up, before Django hands it out
            return super().execute(query, params, **kwargs)
        prefix, count, is_platform = state()
        if not isinstance(query, str):
            query = query.decode() if isinstance(query, bytes) else query.as_string(self)
        if _TRANSACTION_CONTROL.match(query):
            return super().execute(query, params, **kwargs)
        if _NOT_IN_A_TRANSACTION.match(query):
            if not is_platform:
                raise TenantStateRefused(
                    "This statement cannot run inside a transaction, so it cannot carry the "
                    "tenant's state: run it with no tenant active, on a direct connection."
                )
            return super().execute(query, params, **kwargs)
        super().execute(prefix + query, params, **kwargs)
        for _ in range(count):  # the prefix's own results come first
            self.nextset()
        return self

    def executemany(self, query, params_seq, **kwargs):
        prefix, _count, _is_platform = self.connection._tenancy_state()
        if self.connection.autocommit:  # the settings must share the statements' transaction
            with self.connection.transaction():
                super().execute(prefix)
                return super().executemany(query, params_seq, **kwargs)
        super().execute(prefix)
        return super().executemany(query, params_seq, **kwargs)


class TransactionStateMixin:
    """For a PostgreSQL ``DatabaseWrapper``: in transaction mode, every statement carries the
    state ``tenant_state()`` describes. Subclasses implement ``tenant_state()`` and decide
    ``transaction_state`` in their ``__init__``, before calling this one's."""

    transaction_state = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.transaction_state and not self.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS"):
            # A server-side cursor outlives the statement that declared it (WITH HOLD): it
            # cannot carry transaction-local state, and a transaction pooler cannot keep it.
            raise ImproperlyConfigured(
                "Tenant state sent per transaction needs DISABLE_SERVER_SIDE_CURSORS = True in "
                f"DATABASES[{self.alias!r}] (config/settings.py sets it)."
            )

    def get_connection_params(self):
        params = super().get_connection_params()
        if self.transaction_state:
            params["cursor_factory"] = TenantStateCursor
        return params

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        if self.transaction_state:
            connection._tenancy_state = self._statement_state()
        return connection

    def _statement_state(self):
        """``tenant_state``, behind ``SET LOCAL statement_timeout`` when the alias has one
        (``STATEMENT_TIMEOUT_MS``, set by config/settings.py behind a transaction pooler, which
        does not pass the startup ``options`` of a direct connection on)."""
        timeout = self.settings_dict.get("STATEMENT_TIMEOUT_MS")
        if not timeout:
            return self.tenant_state
        timeout_sql = f"SET LOCAL statement_timeout = {int(timeout)}; "
        tenant_state = self.tenant_state

        def state():
            prefix, count, is_platform = tenant_state()
            return timeout_sql + prefix, count + 1, is_platform

        return state

    def tenant_state(self) -> tuple[str, int, bool]:
        """``(SQL to send before the statement, how many statements it holds, whether it is
        the platform's state)`` for the current context."""
        raise NotImplementedError
