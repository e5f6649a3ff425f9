"""The same comparison through a real server: gunicorn, one sync worker, loopback load.

Each variant gets its own gunicorn (one worker process, so the figures are per worker and the
second core is left to the client and PostgreSQL). The client is a small closed-loop load
generator: ``concurrency`` threads, each sending ``GET /`` with the next tenant's Host on a new
connection (gunicorn's sync worker closes every connection), bounded by a request count and a
deadline. Every response is checked (status 200 and the right site's name).
"""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import threading
import time

from benchmarks import datasets
from benchmarks.inprocess import ROOT, Measured, Variant


class Server:
    """gunicorn serving ``variant`` on 127.0.0.1:port."""

    def __init__(self, variant: Variant, port: int):
        self.variant, self.port = variant, port
        self.sites = [
            (host, f"Welcome to {name}</h1>".encode())
            for host, name in datasets.sites(variant.kind, variant.tenants)
        ]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application"]
            + ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--worker-class", "sync"]
            + ["--backlog", "128", "--log-level", "warning", "--timeout", "60"],
            cwd=ROOT,
            env=variant.environment(),
            stdout=subprocess.DEVNULL,
        )
        self._wait_until_ready()

    def _wait_until_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        host, expected = self.sites[0]
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn for {self.variant.label} exited")
            try:
                request(self.port, host, expected)
                return
            except (OSError, RuntimeError):
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn for {self.variant.label} did not answer in {timeout} s")

    def load(self, n: int, concurrency: int, deadline_s: float, start: int = 0):
        """Send ``n`` requests rotating over the sites; returns (latencies_ns, wall_ns)."""
        counter = itertools.count(start)
        stop_at = time.monotonic() + deadline_s
        latencies: list[int] = []
        errors: list[BaseException] = []
        last = start + n

        def client():
            try:
                while time.monotonic() < stop_at:
                    i = next(counter)
                    if i >= last:
                        return
                    host, expected = self.sites[i % len(self.sites)]
                    latencies.append(request(self.port, host, expected))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=client) for _ in range(concurrency)]
        began = time.perf_counter_ns()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter_ns() - began
        if errors:
            raise RuntimeError(f"{self.variant.label}: {errors[0]}")
        return latencies, wall

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def request(port: int, host: str, expected: bytes) -> int:
    """One ``GET /`` with ``Host: host`` on a new connection; its latency in ns."""
    began = time.perf_counter_ns()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        head = f"GET / HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
        sock.sendall(head.encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    elapsed = time.perf_counter_ns() - began
    response = b"".join(chunks)
    if not response.startswith(b"HTTP/1.1 200") or expected not in response:
        raise RuntimeError(f"{host}: {response[:200]!r}")
    return elapsed


def measure(
    variants: list[Variant],
    ports: list[int],
    rounds: int,
    requests: int,
    concurrency: int,
    deadline_s: float = 60.0,
    seed: int = 1,
) -> dict[str, Measured]:
    """Warm each server on every site, then interleaved rounds as in benchmarks.inprocess."""
    import random

    servers = []
    try:
        for variant, port in zip(variants, ports, strict=True):
            print(f"  starting gunicorn for {variant.label} on :{port}", file=sys.stderr)
            servers.append(Server(variant, port))
        results = {s.variant.label: Measured() for s in servers}
        position = {}
        for server in servers:
            print(f"  warming {server.variant.label} over HTTP ...", file=sys.stderr, flush=True)
            n = len(server.sites) + min(requests, 200)
            server.load(n, concurrency, deadline_s=max(deadline_s, n / 50))
            position[server] = n
        order = list(servers)
        rng = random.Random(seed)
        for _ in range(rounds):
            rng.shuffle(order)
            for server in order:
                latencies, wall = server.load(requests, concurrency, deadline_s, position[server])
                position[server] += requests
                results[server.variant.label].add(latencies, wall)
        return results
    finally:
        for server in servers:
            server.stop()
