"""One benchmark variant in a process of its own, driven over stdin/stdout (JSON lines).

A Django process can only be set up once, so each variant (plain Django, row mode, schema mode,
django-tenants; each database) runs here, started by benchmarks.inprocess with its settings in
the environment. Requests go through Django's real WSGI handler — every middleware, the
request_started/finished signals that manage connections — with no server and no test client.

Commands: prepare, warm, run, memory, profile, quit (see ``Worker``).
"""

from __future__ import annotations

import io
import json
import os
import sys
import time


def _proc_status(pid: int | str) -> dict[str, int]:
    """VmRSS, RssAnon, RssShmem of a process in bytes (Linux /proc), {} if unreadable."""
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssShmem"):
                    fields[key] = int(value.split()[0]) * 1024
    except OSError:
        return {}
    return fields


def _server_process() -> int | None:
    """The pid of this process's open PostgreSQL connection's server process, if any."""
    from django.db import connection

    if connection.vendor != "postgresql" or connection.connection is None:
        return None
    return connection.connection.info.backend_pid


def _cpu_time_ns(pid: int | None) -> int | None:
    """CPU time a process has run so far, in ns (/proc/PID/schedstat), None if unreadable (not
    on this machine, or gone)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class Worker:
    def __init__(self):
        from django.core.handlers.wsgi import WSGIHandler

        self.handler = WSGIHandler()
        self.sites: list[tuple[str, bytes]] = []
        self.position = 0
        self.backend_samples: dict[int, dict[str, int]] = {}

    # --- commands -------------------------------------------------------------------------------

    def prepare(self, kind: str, tenants: int, rebuild: bool = False, share=None):
        """Make the dataset; ``share`` = (i, n): serve only every n-th site from the i-th, as
        one of n workers behind a proxy that routes each host to the same worker."""
        from benchmarks import datasets

        started = time.monotonic()
        built = datasets.ensure(kind, tenants, rebuild=rebuild)
        self.sites = [
            (host, f"Welcome to {name}</h1>".encode())
            for host, name in datasets.sites(kind, tenants)
        ]
        if share is not None:
            index, count = share
            self.sites = self.sites[index::count]
        return {"built": built, "seconds": time.monotonic() - started, "sites": len(self.sites)}

    def warm(self):
        """Request every site once (the cold request for each host); returns those latencies."""
        self.position = 0
        return self.run(len(self.sites))

    def run(self, n: int, start: int | None = None):
        """Serve ``n`` home page requests, rotating over the sites; per-request latencies (ns)."""
        if start is not None:
            self.position = start
        latencies, cpu = [], []
        server = _server_process()
        server_began = _cpu_time_ns(server)
        began = time.perf_counter_ns()
        for _ in range(n):
            host, expected = self.sites[self.position % len(self.sites)]
            self.position += 1
            wall_ns, cpu_ns = self._request(host, expected)
            latencies.append(wall_ns)
            cpu.append(cpu_ns)
        wall = time.perf_counter_ns() - began
        server_cpu = None
        if server_began is not None and _server_process() == server:
            server_ended = _cpu_time_ns(server)
            if server_ended is not None:
                server_cpu = (server_ended - server_began) // n
        return {
            "latencies_ns": latencies,
            "cpu_ns": cpu,
            "wall_ns": wall,
            "server_cpu_ns": server_cpu,  # per request; None if not local PostgreSQL or recycled
        }

    def memory(self):
        """This worker's RSS, and its database connection's server process (PostgreSQL)."""
        from django.db import connection

        result = {"python": _proc_status("self"), "backends_seen": len(self.backend_samples)}
        if connection.vendor != "postgresql":
            return result
        connection.ensure_connection()
        pid = _server_process()
        import psycopg

        try:
            with connection.connection.cursor() as cursor:  # raw: no search_path, no schema
                cursor.execute("SELECT sum(total_bytes) FROM pg_backend_memory_contexts")
                contexts = int(cursor.fetchone()[0])
        except psycopg.errors.InsufficientPrivilege:  # the role of row-level security's site
            connection.connection.rollback()
            contexts = None
        result["backend"] = {"pid": pid, "contexts": contexts, **_proc_status(pid)}
        if self.backend_samples:
            result["backend_peak"] = {
                key: max(s.get(key, 0) for s in self.backend_samples.values())
                for key in ("VmRSS", "RssAnon")
            }
        return result

    def sample_backends(self, enable: bool = True):
        """Record the connection's server RSS at the end of every request, before Django's
        close_old_connections() may recycle it (so the peak before a recycle is seen)."""
        from django.core.signals import request_finished
        from django.db import close_old_connections

        request_finished.disconnect(close_old_connections)
        if enable:
            request_finished.connect(self._sample_backend)
        else:
            request_finished.disconnect(self._sample_backend)
        request_finished.connect(close_old_connections)
        self.backend_samples = {}
        return {}

    def profile(self, n: int, path: str):
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        profiler.start()
        result = self.run(n)
        profiler.stop()
        with open(path, "w") as f:
            f.write(profiler.output_text(unicode=True, color=False, show_all=False))
        return {"wall_ns": result["wall_ns"], "path": path}

    def close_connections(self):
        from django.db import connections

        connections.close_all()
        return {}

    # --- internals ------------------------------------------------------------------------------

    def _sample_backend(self, **kwargs):
        pid = _server_process()
        if pid is not None:
            peak = self.backend_samples.setdefault(pid, {})
            for key, value in _proc_status(pid).items():
                peak[key] = max(peak.get(key, 0), value)

    def _request(self, host: str, expected: bytes) -> tuple[int, int]:
        """(wall, CPU time of this thread) of one request, in ns."""
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/",
            "QUERY_STRING": "",
            "SCRIPT_NAME": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": host,
            "HTTP_ACCEPT": "text/html",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        status = []
        began, began_cpu = time.perf_counter_ns(), time.thread_time_ns()
        response = self.handler(environ, lambda s, headers, exc_info=None: status.append(s))
        try:
            body = b"".join(response)
        finally:
            response.close()  # request_finished: Django's connection housekeeping
        elapsed, cpu = time.perf_counter_ns() - began, time.thread_time_ns() - began_cpu
        if not status or not status[0].startswith("200") or expected not in body:
            raise RuntimeError(f"{host}: {status} {body[:300]!r}")
        return elapsed, cpu


def main():
    # Keep the protocol channel clean: anything Django or a library prints goes to stderr.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    import django

    django.setup()
    worker = Worker()
    for line in sys.stdin:
        command = json.loads(line)
        name = command.pop("cmd")
        if name == "quit":
            break
        try:
            result = getattr(worker, name)(**command)
        except Exception as exc:  # reported to the coordinator, which stops the run
            import traceback

            traceback.print_exc()
            result = {"error": f"{type(exc).__name__}: {exc}"}
        protocol.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
