"""Baseline for the schema-mode benchmark: django-tenants' own default path.

Its ``TenantMainMiddleware`` (a Domain query per request, ``set_tenant`` on the connection) and
its stock PostgreSQL backend, serving the plain baseline's page model from each tenant's schema.
"""
