"""Host validation driven by the tenant resolver.

``settings.ALLOWED_HOSTS`` is a ``ResolvedHosts`` instance: while a request is handled it
contains exactly the host the tenant middleware accepted for that request, so Django's
``request.get_host()`` (CSRF, redirects, absolute URLs) accepts that host and nothing else.
Tenant domains added at run time therefore work without a ``"*"`` wildcard.

This module imports nothing from Django so settings can import it.
"""

from contextvars import ContextVar

_accepted_host: ContextVar[str | None] = ContextVar("accepted_host", default=None)


class ResolvedHosts(list):
    """A per-request view of ALLOWED_HOSTS (a list subclass: Django insists on a list)."""

    def __iter__(self):
        host = _accepted_host.get()
        return iter((host,) if host else ())

    def __contains__(self, host):
        return host is not None and host == _accepted_host.get()

    def __bool__(self):
        # Truthy so Django does not substitute its DEBUG defaults or refuse to start.
        return True

    def __len__(self):
        return 1 if _accepted_host.get() else 0

    def __repr__(self):
        return "ResolvedHosts(<host accepted by the tenant resolver>)"


# accept_host(host) accepts ``host`` (without port) for the current request and returns a token
# for reset_accepted_host(token). The context variable's own methods: called on every request.
accept_host = _accepted_host.set
reset_accepted_host = _accepted_host.reset
