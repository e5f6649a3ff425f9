"""django-tenants' PostgreSQL backend, driven by the tenant context instead of connection state.

django-tenants keeps the current tenant on the connection object (``connection.set_tenant``).
Under ASGI that breaks: the middleware may set it on one thread's connection while the view's
queries run on another thread's, and a thread reused by the next request keeps the previous
tenant. Here the schema is chosen when a cursor is made, from ``tenants.runtime.context`` (a
ContextVar that follows the request into every thread), so each query runs in the right schema
whatever thread or pooled connection carries it
(docs/decisions/0005-contextvar-is-the-current-tenant.md).

Rules, in order:

* a tenant is active in the context: ``search_path`` is that tenant's schema *only* — never
  ``public`` behind it, so a missing tenant table is an error, not a read of another schema's
  table of the same name;
* no tenant active: whatever django-tenants' own API set (``schema_context``, migrations),
  public by default;
* both, disagreeing: refuse (``TenantContextConflict``) rather than guess.

``SET search_path`` is sent only when the wanted path differs from the one this connection last
set (django-tenants sends it before every cursor unless TENANT_LIMIT_SET_CALLS), and forgotten
whenever the server may have dropped it (new or pooled connection, rollback).

Behind a transaction pooler (``TENANCY_TRANSACTION_POOLER``) a session-level ``SET`` would
outlive its transaction on a server connection the next client then gets: there, nothing is
set for the session and each statement carries ``SET LOCAL search_path`` instead
(``tenants.backends.transaction_state``).

Cost and memory (figures: docs/benchmarks.md):

* With ``CONN_HEALTH_CHECKS`` Django spends a round trip per request on ``SELECT 1``. When the
  request's first cursor has to change the search_path anyway (a worker serving many tenants:
  almost always), the ``SET`` is the health check, so switching tenants costs no extra round
  trip (docs/decisions/0002-search-path-as-health-check.md).
* A PostgreSQL server process caches catalog entries for every schema it touches and never
  gives them back, so its memory keeps growing with the tenants its connection serves
  (benchmarks/schema_memory.py). Once a connection has set more than
  ``TENANCY_CONNECTION_MAX_SCHEMAS`` distinct tenant schemas (``public`` not counted) it is
  closed at the end of the request (where Django applies ``CONN_MAX_AGE``) and the next request
  opens a fresh one; 0 turns this off. The price: a fresh connection loads each schema's
  catalog entries again, so a worker whose traffic spans more tenants than the ceiling pays
  that on most requests (docs/decisions/0003-connection-ceiling.md).
"""

import functools

import psycopg
from django.conf import settings
from django.core.exceptions import ValidationError
from django_tenants.postgresql_backend import base as django_tenants_base
from django_tenants.utils import quote_schema_name

from tenants import cells
from tenants.backends.transaction_state import TransactionStateMixin
from tenants.cells import alias_of
from tenants.runtime.context import current_tenant

DatabaseError = django_tenants_base.DatabaseError
IntegrityError = django_tenants_base.IntegrityError


class TenantContextConflict(RuntimeError):
    """Code set a schema through django-tenants' API that differs from the active tenant."""


class TenantOnAnotherCell(TenantContextConflict, cells.TenantOnAnotherCell):
    """A query for the active tenant reached the connection of a cell that does not hold it."""


class DatabaseWrapper(TransactionStateMixin, django_tenants_base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        self.schemas_served: set[str] = set()  # distinct schemas this server session has set
        self.transaction_state = bool(getattr(settings, "TENANCY_TRANSACTION_POOLER", False))
        # With cells (tenants.cells) a tenant's schema exists in its own cell only.
        self.cells = bool(getattr(settings, "TENANCY_CELLS", None))
        super().__init__(*args, **kwargs)

    def get_new_connection(self, conn_params):
        # A new (or pooled, reused) server session: its search_path is unknown to us.
        self.search_path_set_schemas = None
        self.schemas_served = set()
        return super().get_new_connection(conn_params)

    def close_if_unusable_or_obsolete(self):
        """Django's end/start-of-request check, plus: recycle a connection that has served more
        than TENANCY_CONNECTION_MAX_SCHEMAS distinct tenant schemas (its server process's catalog
        caches grow with every schema touched)."""
        super().close_if_unusable_or_obsolete()
        if self.transaction_state:
            return  # server sessions belong to the pooler (its server_lifetime bounds them)
        limit = getattr(settings, "TENANCY_CONNECTION_MAX_SCHEMAS", 0)
        if limit and self.connection is not None and len(self.schemas_served) > limit:
            self.close()

    def close_if_health_check_failed(self):
        """A ``SET search_path`` that is due anyway stands in for Django's ``SELECT 1``."""
        if self.transaction_state:
            return super().close_if_health_check_failed()  # no session SET to stand in
        if self.connection is None or not self.health_check_enabled or self.health_check_done:
            return
        try:
            wanted = self._get_cursor_search_paths()
        except (TenantContextConflict, ValidationError):
            wanted = None  # raised where it always is: when the cursor is made
        if wanted is None or wanted == self.search_path_set_schemas:
            return super().close_if_health_check_failed()
        try:
            # Like Django's is_usable(): on the driver's connection, outside query logging.
            with self.connection.cursor() as cursor:
                cursor.execute(_set_search_path_sql(wanted))
        except psycopg.Error:
            self.close()  # unusable: the next cursor connects afresh and sets the path
        else:
            self._search_path_is(wanted)
        self.health_check_done = True

    def _handle_search_path(self, cursor=None):
        if self._setting_search_path or self.transaction_state:
            return
        if self.search_path_set_schemas == self._wanted_search_path():
            return
        # The parent sends SET search_path with the value from _get_cursor_search_paths().
        super()._handle_search_path(cursor)
        if self.search_path_set_schemas is not None:
            self._search_path_is(self.search_path_set_schemas)

    def _search_path_is(self, paths):
        self.search_path_set_schemas = paths
        # Tenant schemas only: public is one schema whatever the number of tenants, so with it
        # counted a worker serving exactly TENANCY_CONNECTION_MAX_SCHEMAS tenants would recycle.
        self.schemas_served.update(paths)
        self.schemas_served.discard(settings.PUBLIC_SCHEMA_NAME)

    def tenant_state(self):
        """Transaction mode: ``SET LOCAL search_path`` for the current context."""
        return _local_search_path(tuple(self._get_cursor_search_paths()))

    def _get_cursor_search_paths(self):
        paths = self._wanted_search_path()
        for path in paths:
            _check_schema_name(path)
        return paths

    def _wanted_search_path(self):
        public = settings.PUBLIC_SCHEMA_NAME
        tenant = current_tenant()
        explicit = self.schema_name  # set through django-tenants' API; public by default
        if tenant is None:
            if explicit == public or not self.include_public_schema:
                return [explicit]
            return [explicit, public]
        if self.cells and alias_of(tenant) != self.alias:
            raise TenantOnAnotherCell(
                f"Tenant {tenant.schema_name!r} lives in cell {tenant.cell or 'default'!r}, "
                f"not on database alias {self.alias!r}; route its queries with the router "
                "(tenants.cells) or use tenants.cells.tenant_alias()."
            )
        if explicit in (public, tenant.schema_name):
            return [tenant.schema_name]
        raise TenantContextConflict(
            f"Tenant {tenant.schema_name!r} is active but the connection was set to schema "
            f"{explicit!r}; use tenants.runtime.context.tenant_context() to switch tenants."
        )


@functools.lru_cache(maxsize=100_000)
def _check_schema_name(name: str) -> None:
    """django-tenants' check (ValidationError for an invalid name), once per valid name: it runs
    on every request. Invalid names are not remembered: they raise every time."""
    django_tenants_base._check_schema_name(name)


@functools.lru_cache(maxsize=100_000)
def _local_search_path(paths: tuple[str, ...]) -> tuple[str, int, bool]:
    statement = "SET LOCAL " + _set_search_path_sql(paths)[len("SET ") :]
    return statement + "; ", 1, paths == (settings.PUBLIC_SCHEMA_NAME,)


def _set_search_path_sql(paths) -> str:
    # The same statement django-tenants' _handle_search_path sends.
    return "SET search_path = {}".format(",".join(quote_schema_name(p) for p in paths))
