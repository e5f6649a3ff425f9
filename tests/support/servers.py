"""Start the site as a real server process, on the test database, for HTTP-level tests."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

REPO = Path(__file__).resolve().parents[2]


def free_ports():
    """Free ports of TEST_SERVER_PORTS, the range the tests' server processes may use."""
    low, high = (int(p) for p in os.environ.get("TEST_SERVER_PORTS", "8400-8499").split("-"))
    for port in range(low, high + 1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        yield port


def free_port() -> int:
    for port in free_ports():
        return port
    raise RuntimeError("no free port in TEST_SERVER_PORTS")


def served_database_url() -> str:
    """DATABASE_URL of the database pytest-django set up (committed data only is visible)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db.get("USER") or "postgres")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    host = db.get("HOST") or "127.0.0.1"
    return f"postgres://{auth}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


def manage(*args, env, check=True, timeout=600, **kwargs):
    """Run ``manage.py *args`` in a separate process with ``env`` over this one's environment."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


@contextmanager
def run_server(extra_env=None, command=None):
    """Run ``manage.py runserver`` (or ``command``) on a free port; yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "TENANCY_MODE": settings.TENANCY_MODE,
        "DATABASE_URL": served_database_url(),
        "PORT": str(port),
        "TENANCY_SCHEMA_POOL_REFILL": "command",  # commits no spares to the shared test database
        **(extra_env or {}),
    }
    argv = command or [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    argv = [part.format(port=port) for part in argv]
    process = subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, process)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_until_up(base, process, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{process.stdout.read()}")
        try:
            urllib.request.urlopen(base + "/", timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start in time")


def fetch(base, path="/", host=None, headers=None):
    """GET over real HTTP; returns (status, body text). Never raises for HTTP errors."""
    request = urllib.request.Request(base + path, headers={**(headers or {})})
    if host is not None:
        request.add_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
