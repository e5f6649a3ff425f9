"""Separate processes for tests: ``manage.py`` commands, and the one way to start a server.

A server is any command that serves HTTP on ``127.0.0.1:{port}`` (runserver, gunicorn, ...). It
gets a free port of ``TEST_SERVER_PORTS`` (default 8400-8499: parallel checkouts pick their own
range), is waited for until it answers, and is stopped at the end::

    with serving(env=on_test_database()) as server:      # manage.py runserver
        status, headers, body = server.get("acme.localhost", "/")

    server = start_production_server(tmp_path)          # gunicorn, DEBUG off, log in tmp_path
    ...
    server.stop()

``on_test_database()`` points a server at the database pytest-django set up (the SQLite file in
row mode, the PostgreSQL test database otherwise): it sees committed rows only.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from http.client import HTTPMessage
from pathlib import Path
from typing import NamedTuple

from django.conf import settings
from django.db import connection

from tenants import rls
from tests.support.postgres import database_url

REPO = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
RUNSERVER = [sys.executable, "manage.py", "runserver", "127.0.0.1:{port}", "--noreload"]
# Switches of the test run itself, which a server process must not inherit.
NOT_INHERITED = ("TEST_DATABASE_NAME", "DJANGO_ALLOW_ASYNC_UNSAFE")
START_ATTEMPTS = 3  # a port found free may be taken by someone else before the server binds it


def gunicorn(*options: str) -> list[str]:
    """The command line of gunicorn serving the project on ``127.0.0.1:{port}``."""
    return [GUNICORN, "config.wsgi:application", "--bind=127.0.0.1:{port}", *options]


# --- Ports and databases -------------------------------------------------------------------------


def free_ports(variable="TEST_SERVER_PORTS", default="8400-8499"):
    """Free ports of TEST_SERVER_PORTS (or ``variable``), the range the tests' server processes
    may use."""
    low, high = (int(p) for p in os.environ.get(variable, default).split("-"))
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


def served_database_url(alias: str | None = None) -> str:
    """DATABASE_URL of the database pytest-django set up (committed data only is visible), as
    ``alias``'s role (by default the owner's with row-level security)."""
    if connection.vendor == "sqlite":
        return f"sqlite:///{connection.settings_dict['NAME']}"
    return database_url(connection.settings_dict["NAME"], alias)


def on_test_database(**extra_env: str) -> dict[str, str]:
    """A server's environment: this run's mode, on its test database, with ``extra_env`` over
    it. It fills no spare-schema pool: the test database is shared by the whole run (the
    background refill is tested in tests/http/test_signup_live.py, on a database of its own)."""
    app = {"DATABASE_APP_URL": served_database_url("default")} if rls.enabled() else {}
    return {
        "TENANCY_MODE": settings.TENANCY_MODE,
        "DATABASE_URL": served_database_url(),
        **app,  # row-level security: the site's role (DATABASE_URL is the owner's)
        "TENANCY_SCHEMA_POOL_REFILL": "command",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),  # uploads go to the tests' temporary directory
        **extra_env,
    }


# --- manage.py -----------------------------------------------------------------------------------


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


# --- Servers -------------------------------------------------------------------------------------


class Response(NamedTuple):
    status: int
    headers: HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


class ServerProcess:
    """A server started by :func:`start_server`; its output goes to ``log``."""

    def __init__(self, port: int, process: subprocess.Popen, log: Path):
        self.port, self.process, self.log = port, process, log
        self.base = f"http://127.0.0.1:{port}"
        self._own_dir = None  # the log's temporary directory, if start_server made one

    def url(self, host: str, path: str = "/") -> str:
        """The URL of ``path`` on ``host`` (a name that resolves to the loopback)."""
        return f"http://{host}:{self.port}{path}"

    def request(self, host, path="/", *, data=None, headers=None, timeout=10) -> Response:
        """Send ``data`` (POST) or nothing (GET) to 127.0.0.1 with ``host:port`` as Host (a
        Host in ``headers`` is sent instead, as it is). Never raises for HTTP errors."""
        request = urllib.request.Request(
            self.base + path, data=data, headers={"Host": f"{host}:{self.port}", **(headers or {})}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return Response(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, error.headers, error.read())

    def get(self, host, path="/", headers=None) -> Response:
        return self.request(host, path, headers=headers)

    def _signal_group(self, signum):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout=30):
        """SIGTERM, and SIGKILL if it has not exited within ``timeout`` seconds; its worker
        processes too (its process group), which would otherwise outlive it, connections held."""
        self._signal_group(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)
        self._signal_group(signal.SIGKILL)
        self.process.wait()
        if self._own_dir is not None:
            self._own_dir.cleanup()
            self._own_dir = None


class Visitor:
    """One person's browser over real HTTP to ``server``: cookies kept per host, as a browser
    keeps them; redirects are answers, not followed."""

    def __init__(self, server: ServerProcess, timeout=10):
        self.server, self.timeout = server, timeout
        self.cookies: dict[str, dict[str, str]] = {}
        self._opener = urllib.request.build_opener(_NoRedirect())

    def request(self, host, path="/", form=None, headers=None) -> Response:
        """GET ``path`` on ``host``, or POST ``form`` (a dict) to it, with any other
        ``headers`` (a forged X-Forwarded-Host, say)."""
        body = urllib.parse.urlencode(form).encode() if form is not None else None
        jar = self.cookies.setdefault(host, {})
        headers = {"Host": f"{host}:{self.server.port}", **(headers or {})}
        if jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        request = urllib.request.Request(self.server.base + path, data=body, headers=headers)
        try:
            response = self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            response = error
        with response:
            for cookie in response.headers.get_all("Set-Cookie") or []:
                name, value = cookie.split(";", 1)[0].split("=", 1)
                if "expires=Thu, 01 Jan 1970" in cookie or value in ("", '""'):
                    jar.pop(name, None)
                else:
                    jar[name] = value
            return Response(response.status, response.headers, response.read())

    def submit(self, host, path, form, headers=None) -> Response:
        """GET the form at ``path`` (for its CSRF token), then POST ``form`` to it."""
        page = self.request(host, path, headers=headers).text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        return self.request(host, path, {**form, "csrfmiddlewaretoken": token}, headers)

    def login(self, host, username, password) -> bool:
        """Sign in through ``host``'s admin log-in form; True when it lets the person in."""
        form = {"username": username, "password": password, "next": "/admin/"}
        answer = self.submit(host, "/admin/login/", form)
        return answer.status == 302 and answer.headers.get("Location") == "/admin/"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def start_server(
    command=RUNSERVER, *, env=None, port=None, log_dir=None, ready_path="/", timeout=60
) -> ServerProcess:
    """Start ``command`` (its ``{port}`` filled in) in the repository with ``env`` over this
    process's environment, on ``port`` or a free port of TEST_SERVER_PORTS, and wait until it
    answers a GET of ``ready_path`` (any HTTP status). Its output goes to a log in ``log_dir``
    (default: a temporary directory, removed by stop()); the log is quoted if it fails."""
    inherited = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env = {**inherited, "PYTHONUNBUFFERED": "1", **(env or {})}
    own_dir = tempfile.TemporaryDirectory(prefix="test-server-") if log_dir is None else None
    log_dir = Path(own_dir.name if own_dir else log_dir)
    failure = "found no free port in TEST_SERVER_PORTS"
    ports = [port] if port else free_ports()
    for attempt, port in enumerate(ports, start=1):
        argv = [part.format(port=port) for part in command]
        log = log_dir / f"server-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv,
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a process group of its own: stop() ends its workers
            )
        server = ServerProcess(port, process, log)
        if _answers(server, ready_path, timeout):
            server._own_dir = own_dir
            return server
        exited = process.poll() is not None  # the port was taken, or a start-up error
        server.stop()
        why = "exited" if exited else f"did not answer within {timeout} s"
        failure = f"{why}: {' '.join(argv)}\nIts output:\n{server.log_text()[-3000:]}"
        if not exited or attempt >= START_ATTEMPTS:
            break
    if own_dir is not None:
        own_dir.cleanup()
    raise RuntimeError(f"The test server {failure}")


def _answers(server: ServerProcess, path: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            server.get("localhost", path)
            return True
        except OSError:
            time.sleep(0.1)
    return False


@contextmanager
def serving(command=RUNSERVER, **options):
    """:func:`start_server` for a ``with`` block; yields the ServerProcess, stops it after."""
    server = start_server(command, **options)
    try:
        yield server
    finally:
        server.stop()


def start_production_server(log_dir: Path, **extra_env: str) -> ServerProcess:
    """gunicorn as in production (DEBUG off), on the test database, one worker of 4 threads."""
    env = on_test_database(DEBUG="False", CACHE_URL="locmemcache://", **extra_env)
    command = gunicorn(
        "--workers=1",
        "--threads=4",
        "--graceful-timeout=2",
        "--no-control-socket",  # one per process, not one per user's home
    )
    return start_server(command, env=env, log_dir=log_dir, ready_path="/static/home/site.css")
