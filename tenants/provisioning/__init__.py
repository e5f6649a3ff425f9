"""Creating tenants: where a tenant, its schema, domain and first content are made.

* ``services``        ``create_tenant()`` / ``provision_tenant_for_user()``: a live site in one
                      transaction (sign-up, the platform admin, ``manage.py tenants create``)
* ``schema_factory``  ``create_tenant_schema()``: a new tenant schema, fast (spare, then script)
* ``schema_pool``     spare schemas made ahead of time, claimed by renaming
* ``schema_template`` the migrated template schema, turned into one SQL script
* ``bulk``            many schemas at once on the template script (bench tenants, the upgrade)
* ``starter``         the pages a new self-service site starts with
"""
