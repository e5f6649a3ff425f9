"""The upgrade from row mode to schema mode: a row-mode database becomes a schema per tenant.

Reads a row-mode database (SQLite or PostgreSQL, opened read-only: it is never modified) and
writes the configured schema-mode PostgreSQL database:

* ``public`` gets every tenant and domain, the platform's users (staff, tenant owners, members
  of the default tenant, accounts with no membership), all groups, and the default tenant's
  own rows: it is the platform's site;
* each other tenant gets a schema (cloned from a freshly migrated template) with its rows, the
  users who are its members or are referenced by its rows, and their groups and permissions.

Primary keys are kept (a user keeps one id in every schema it is copied to); content types and
permissions are made by the target's migrations and references to them are mapped by natural
key; each table's sequence is set past its highest id. Sessions are not copied: everyone signs
in again.

Each schema is written in one transaction that also records it in ``public.tenancy_upgrade``:
an interrupted run leaves whole schemas or nothing, and a rerun does only what is left. Every
run ends by verifying each schema and table against a fresh read of the source (row count and a
checksum of the rows); any difference is an error that names the schema and table.

The steps, a module each: ``source`` (reading the row-mode database, values in one form),
``tables`` (what is copied), ``plan`` (where each row goes), ``write`` (the target: its state
and writing one schema), ``verify`` (checksums against the source) and ``job`` (``Upgrade``,
one run of them all).
"""

from tenants.operations.upgrade.errors import UpgradeError
from tenants.operations.upgrade.job import Upgrade
from tenants.operations.upgrade.source import Source
from tenants.operations.upgrade.verify import Mismatch

__all__ = ["Mismatch", "Source", "Upgrade", "UpgradeError"]
