"""Which tenancy mode this run tests, and the markers that tie a test to one mode.

The suite runs once per mode (scripts/test): TENANCY_MODE=row and TENANCY_MODE=schema. A test
marked ``row_only`` or ``schema_only`` is skipped in the other mode, and reported as such
(never dropped silently); schema mode itself needs PostgreSQL, and fails without it.
"""

import pytest
from django.conf import settings

MODE = settings.TENANCY_MODE
SCHEMA_MODE = MODE == "schema"
# Row mode on PostgreSQL: PostgreSQL's row-level security on (docs/row-level-security.md).
ROW_LEVEL_SECURITY = settings.TENANCY_ROW_LEVEL_SECURITY
# For django_db(databases=...): tests whose code also uses the owner's connection
# (tenants.rls.owner_alias(), with row-level security on).
DATABASES_WITH_OWNER = ["default", "owner"] if ROW_LEVEL_SECURITY else ["default"]
OTHER_MODES_MARKER = "row_only" if SCHEMA_MODE else "schema_only"


def skip_tests_of_the_other_mode(items):
    """Mark each collected test of the other mode as skipped, with the reason shown."""
    marker = pytest.mark.skip(reason=f"runs in the other mode ({OTHER_MODES_MARKER})")
    for item in items:
        if OTHER_MODES_MARKER in item.keywords:
            item.add_marker(marker)
