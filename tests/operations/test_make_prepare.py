"""`make run` / `make serve` start-up takes the fleet path: with every schema up to date it does
no work per schema (issue 12, item 3). Runs the Makefile's own `prepare` step."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.support.modes import SCHEMA_MODE
from tests.support.servers import REPO, manage, served_database_url

SCHEMAS = 12  # tenant schemas beside the demo tenants'


def _env():
    return {"DATABASE_URL": served_database_url(), "TENANCY_SCHEMA_POOL_SIZE": "0"}


@pytest.fixture
def many_tenants(django_db_setup):
    prefix = f"prep{time.monotonic_ns() % 100000}"
    manage("create_bench_tenants", str(SCHEMAS), "--prefix", prefix, "--pages", "1", env=_env())
    yield prefix
    drop = ["--drop-schema"] if SCHEMA_MODE else []
    for i in range(1, SCHEMAS + 1):
        manage("tenants", "delete", f"{prefix}-{i:05d}", "--yes", *drop, env=_env(), check=False)


def test_prepare_with_everything_up_to_date_does_nothing_per_schema(many_tenants):
    if shutil.which("make") is None:
        pytest.fail("No make: apt-get install make")
    venv = Path(sys.executable).parent.parent
    done = subprocess.run(
        ["make", "-o", f"{venv}/.installed", "prepare", f"VENV={venv}"],
        cwd=REPO,
        env={**os.environ, **_env(), "TENANCY_MODE": settings.TENANCY_MODE},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "manage.py tenants migrate" in done.stdout
    if SCHEMA_MODE:
        # The fleet path read every schema's state at once, and found nothing to apply...
        assert f"{SCHEMAS + 4} tenant schemas: nothing to apply" in done.stdout, done.stdout
        # ... where django-tenants' migrate went through each schema in turn.
        assert "[standard:" not in done.stdout
        assert many_tenants.replace("-", "_") not in done.stdout + done.stderr
    else:
        assert "Row mode: every tenant shares the tables" in done.stdout
        assert "No migrations to apply" in done.stdout
