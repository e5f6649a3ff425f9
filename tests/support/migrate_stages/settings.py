"""Settings for the fleet-migration tests and benchmark: the project plus a staged tenant app.

``MIGRATE_BENCH_STAGE`` (1-4) chooses how many of the app's migrations exist, so a run with a
higher stage has that many new migrations to apply (see steps.py). The app keeps its label,
``migrate_bench_app``: its tables (migrate_bench_app_widget, ...) are named after it, and
benchmarks/fleet_migrate.py reuses databases that already have them.
"""

import os

from config.settings import *  # noqa: F403
from config.settings import SCHEMA_MODE, SHARED_APPS, TENANT_APPS

STAGE = int(os.environ.get("MIGRATE_BENCH_STAGE", "1"))
BENCH_APP = "tests.support.migrate_stages"

SHARED_APPS = [*SHARED_APPS, BENCH_APP]
TENANT_APPS = [*TENANT_APPS, BENCH_APP]
if SCHEMA_MODE:
    INSTALLED_APPS = list(SHARED_APPS) + [a for a in TENANT_APPS if a not in SHARED_APPS]
else:
    INSTALLED_APPS = [a for a in SHARED_APPS if a != "django_tenants"]
MIGRATION_MODULES = {"migrate_bench_app": f"tests.support.migrate_stages.migrations_stage{STAGE}"}
