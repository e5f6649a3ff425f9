"""Baseline for the home page benchmark: the same page in plain Django, with no tenancy.

Same model fields, same templates (home/index.html on templates/base.html), same middleware minus
``TenantMiddleware``, same database options. Lives in benchmarks/, never in the product apps.
"""
