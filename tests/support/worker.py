"""The job worker as a real, separate process on the test database (``manage.py db_worker``)."""

import os
import subprocess
import sys

from tests.support.servers import NOT_INHERITED, REPO, on_test_database

WORKER_FLAGS = ["--queue-name", "*", "--no-startup-delay", "--no-reload"]


def process_env(**extra) -> dict:
    """Environment of a worker process on the test database, in this run's mode."""
    env = {**os.environ, **on_test_database(**{k: str(v) for k, v in extra.items()})}
    for name in NOT_INHERITED:
        env.pop(name, None)
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
