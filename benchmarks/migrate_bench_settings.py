"""Settings for the fleet-migration benchmark and tests: the project plus a bench tenant app.

``MIGRATE_BENCH_STAGE`` (1-4) chooses how many of the bench app's migrations exist, so a run
with a higher stage has that many new migrations to apply (see migrate_bench_app/steps.py).
"""

import os

from config.settings import *  # noqa: F403
from config.settings import SCHEMA_MODE, SHARED_APPS, TENANT_APPS

STAGE = int(os.environ.get("MIGRATE_BENCH_STAGE", "1"))
BENCH_APP = "benchmarks.migrate_bench_app"

SHARED_APPS = [*SHARED_APPS, BENCH_APP]
TENANT_APPS = [*TENANT_APPS, BENCH_APP]
if SCHEMA_MODE:
    INSTALLED_APPS = list(SHARED_APPS) + [a for a in TENANT_APPS if a not in SHARED_APPS]
else:
    INSTALLED_APPS = [a for a in SHARED_APPS if a != "django_tenants"]
MIGRATION_MODULES = {"migrate_bench_app": f"benchmarks.migrate_bench_app.migrations_stage{STAGE}"}
