"""What runs on every request and decides isolation.

Read these first; nothing else in the project runs per request (besides the database backend,
``tenants/backends/postgresql/``, which picks the schema in schema mode):

* ``context``    the current tenant: one ContextVar (``tenant_context()``, ``no_tenant()``)
* ``middleware`` Host -> tenant for each request: ``request.tenant`` and the tenant context
* ``normalize``  what a host name is (case, port, trailing dot, IDN)
* ``resolution`` the Domain table, cached per process, and how other processes' changes arrive
* ``hosts``      ``ALLOWED_HOSTS`` that accepts exactly the host the resolver accepted
* ``scoping``    the fail-closed manager of tenant-owned models (row filter in both modes)
* ``sessions``   sessions bound to the tenant they were made on
* ``cache``      cache keys that carry the tenant
* ``signals``    host lookups forgotten when a tenant or domain changes
"""
