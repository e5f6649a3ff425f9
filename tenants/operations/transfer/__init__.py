"""Export and restore one tenant: its accounts, rows and files in one archive file.

``export_tenant(tenant, path, using=alias)`` writes the archive; ``import_tenant(path, slug=...,
using=alias)`` restores it as a new tenant (or, ``keep_identity=True``, as the same tenant into
another database: what a move between databases is made of), verifies every table against the
export's checksums before committing, and leaves nothing behind on any failure;
``remove_tenant_data(tenant, using=alias)`` deletes a tenant's data from one database (the last
step of a move). Modules: ``tables`` (what is carried, rows as JSON lines), ``archive`` (the zip
file), ``export``, ``restore``, ``users`` (accounts and the rule for a taken username),
``remove``. Operators' guide: docs/operations.md, "Export and restore one tenant".
"""

from tenants.operations.transfer.export import export_tenant
from tenants.operations.transfer.remove import remove_tenant_data
from tenants.operations.transfer.restore import Imported, import_tenant
from tenants.operations.transfer.tables import ArchiveError

__all__ = ["ArchiveError", "Imported", "export_tenant", "import_tenant", "remove_tenant_data"]
