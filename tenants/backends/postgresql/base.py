"""django-tenants' PostgreSQL backend, driven by the tenant context instead of connection state.

django-tenants keeps the current tenant on the connection object (``connection.set_tenant``).
Under ASGI that breaks: the middleware may set it on one thread's connection while the view's
queries run on another thread's, and a thread reused by the next request keeps the previous
tenant. Here the schema is chosen when a cursor is made, from ``tenants.context`` (a ContextVar
that follows the request into every thread), so each query runs in the right schema whatever
thread or pooled connection carries it.

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
"""

from django_tenants.postgresql_backend import base as django_tenants_base
from django_tenants.utils import get_public_schema_name

from tenants.context import current_tenant

DatabaseError = django_tenants_base.DatabaseError
IntegrityError = django_tenants_base.IntegrityError


class TenantContextConflict(RuntimeError):
    """Code set a schema through django-tenants' API that differs from the active tenant."""


class DatabaseWrapper(django_tenants_base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        # A new (or pooled, reused) server session: its search_path is unknown to us.
        self.search_path_set_schemas = None
        return super().get_new_connection(conn_params)

    def _handle_search_path(self, cursor=None):
        if self._setting_search_path:
            return
        wanted = self._get_cursor_search_paths()
        if self.search_path_set_schemas == wanted:
            return
        # The parent sends SET search_path with the value from _get_cursor_search_paths().
        super()._handle_search_path(cursor)

    def _get_cursor_search_paths(self):
        public = get_public_schema_name()
        tenant = current_tenant()
        explicit = self.schema_name  # set through django-tenants' API; public by default
        if tenant is None:
            if explicit == public or not self.include_public_schema:
                paths = [explicit]
            else:
                paths = [explicit, public]
        elif explicit in (public, tenant.schema_name):
            paths = [tenant.schema_name]
        else:
            raise TenantContextConflict(
                f"Tenant {tenant.schema_name!r} is active but the connection was set to schema "
                f"{explicit!r}; use tenants.context.tenant_context() to switch tenants."
            )
        for path in paths:
            django_tenants_base._check_schema_name(path)
        return paths
