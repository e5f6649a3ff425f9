"""The job worker as a real, separate process on the test database (``manage.py db_worker``)."""

import os
import subprocess
import sys

from django.conf import settings

from tests.servers import REPO, served_database_url

# What the tests' worker and server processes must share with the test process.
WORKER_FLAGS = ["--queue-name", "*", "--no-startup-delay", "--no-reload"]


def process_env(**extra) -> dict:
    """Environment of a worker or server process on the test database, in this run's mode."""
    env = {
        **os.environ,
        "TENANCY_MODE": settings.TENANCY_MODE,
        "DATABASE_URL": served_database_url(),
        "TENANCY_SCHEMA_POOL_REFILL": "command",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PYTHONUNBUFFERED": "1",
        **{key: str(value) for key, value in extra.items()},
    }
    env.pop("TEST_DATABASE_NAME", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def run_worker(timeout=120, **extra_env) -> str:
    """Run every queued job in a separate worker process (``db_worker --batch``: it exits once
    the queue is empty); returns its log."""
    done = subprocess.run(
        [sys.executable, "manage.py", "db_worker", "--batch", "-v", "2", *WORKER_FLAGS],
        cwd=REPO,
        env=process_env(**extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"the worker failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def start_worker(log_path, **extra_env) -> subprocess.Popen:
    """A long-running worker (as ``make run`` starts), polling the queue; stop it with
    ``.terminate()``."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--interval", "0.2", *WORKER_FLAGS],
            cwd=REPO,
            env=process_env(**extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
