"""Database sessions bound to the tenant they were created on.

Every saved session records its tenant; loading it under another tenant (a cookie carried from
acme.localhost to techinnov.localhost, or a shared cookie domain) yields an empty, new session,
so it is never a logged-in session there. In schema mode sessions also live in the tenant's own
schema; this check is the second wall.
"""

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

from tenants.runtime.context import current_tenant

TENANT_SESSION_KEY = "_tenant_id"


def _current_tenant_id():
    tenant = current_tenant()
    return tenant.pk if tenant is not None else None


class SessionStore(DatabaseSessionStore):
    def load(self):
        data = super().load()
        if data and data.get(TENANT_SESSION_KEY) != _current_tenant_id():
            self._session_key = None  # another tenant's session: start a fresh one
            return {}
        return data

    def save(self, must_create=False):
        self._get_session(no_load=must_create)[TENANT_SESSION_KEY] = _current_tenant_id()
        super().save(must_create=must_create)
