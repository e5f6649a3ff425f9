"""What operators run on tenants that exist (``manage.py tenants``, ``domains``, the upgrade).

* ``lifecycle`` find, (de)activate, rename, delete, owners, domains: one transaction each
* ``fleet``     fleet migrations: every tenant schema, states read at once, SQL computed once
* ``upgrade``   row mode -> schema mode: read the source, plan, write, verify
* ``transfer``  one tenant to an archive file and back (export, import, verified; moves)
* ``progress``  live progress bars and tables for the commands (rich)
"""
