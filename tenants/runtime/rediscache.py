"""Redis as a cache that may go away: an outage slows pages down, it never takes them down.

django-redis does most of it (``IGNORE_EXCEPTIONS``: a connection error or timeout is a miss
for ``get`` and a no-op for ``set``/``delete``; ``SOCKET_CONNECT_TIMEOUT``/``SOCKET_TIMEOUT``
bound each wait). What it does not do is stop trying: every cache call of every request would
open a new connection to a dead server, and with a server that does not answer (not refused,
just silent) each call would wait for its timeout. Here, after a failure, connections to that
server fail at once for ``BACKOFF_SECONDS``; then one call tries again. One warning is logged
when the server goes, one when it is back (and a reminder a minute while it stays away), not
one per call.

Nothing that decides isolation is on the cache: host lookups are invalidated through the
database (tenants.runtime.resolution) and sessions live in the database.
"""

from __future__ import annotations

import logging
import threading
import time

from django_redis.pool import ConnectionFactory as DjangoRedisConnectionFactory
from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError, TimeoutError

BACKOFF_SECONDS = 2.0
REMINDER_SECONDS = 60.0
logger = logging.getLogger(__name__)


class _Health:
    """What this process knows of one Redis server."""

    def __init__(self):
        self.lock = threading.Lock()
        self.down_since: float | None = None
        self.retry_at = 0.0
        self.reminded_at = 0.0

    def failed(self, address: str, error: Exception) -> None:
        now = time.monotonic()
        with self.lock:
            self.retry_at = now + BACKOFF_SECONDS
            if self.down_since is None:
                self.down_since = self.reminded_at = now
                logger.warning(
                    "Redis at %s is unreachable (%s): the cache counts as empty, retried "
                    "every %.0fs.",
                    address,
                    error,
                    BACKOFF_SECONDS,
                )
            elif now - self.reminded_at >= REMINDER_SECONDS:
                self.reminded_at = now
                logger.warning(
                    "Redis at %s still unreachable after %.0fs (%s).",
                    address,
                    now - self.down_since,
                    error,
                )

    def succeeded(self, address: str) -> None:
        with self.lock:
            if self.down_since is not None:
                logger.warning(
                    "Redis at %s is reachable again after %.0fs.",
                    address,
                    time.monotonic() - self.down_since,
                )
                self.down_since = None


_health: dict[str, _Health] = {}


def _health_of(address: str) -> _Health:
    health = _health.get(address)
    if health is None:
        health = _health.setdefault(address, _Health())
    return health


class _BackingOff:
    """A redis-py connection that reports failures to its server's health, and does not try
    a server that failed less than BACKOFF_SECONDS ago."""

    def connect(self):
        address = self._address()
        health = _health_of(address)
        if health.down_since is not None and time.monotonic() < health.retry_at:
            raise ConnectionError(f"Redis at {address} is unreachable (not retried yet).")
        try:
            super().connect()
        except (ConnectionError, TimeoutError) as error:
            health.failed(address, error)
            raise
        if health.down_since is not None:
            health.succeeded(address)

    def send_packed_command(self, *args, **kwargs):
        return self._reporting(super().send_packed_command, *args, **kwargs)

    def read_response(self, *args, **kwargs):
        return self._reporting(super().read_response, *args, **kwargs)

    def _reporting(self, call, *args, **kwargs):
        """``call()``; a connection error or timeout on an open connection counts as a failure
        of its server too."""
        try:
            return call(*args, **kwargs)
        except (ConnectionError, TimeoutError) as error:
            _health_of(self._address()).failed(self._address(), error)
            raise

    def _address(self) -> str:
        path = getattr(self, "path", None)
        return path or f"{self.host}:{self.port}"


class BackingOffConnection(_BackingOff, Connection):
    pass


class BackingOffSSLConnection(_BackingOff, SSLConnection):
    pass


class BackingOffUnixConnection(_BackingOff, UnixDomainSocketConnection):
    pass


_CONNECTION_CLASSES = {
    "redis": BackingOffConnection,
    "rediss": BackingOffSSLConnection,
    "unix": BackingOffUnixConnection,
}


class ConnectionFactory(DjangoRedisConnectionFactory):
    """django-redis' factory (``OPTIONS["CONNECTION_FACTORY"]``), with connections that back
    off from a server that failed."""

    def get_connection_pool(self, params):
        scheme = params["url"].split("://", 1)[0]
        return super().get_connection_pool(
            {**params, "connection_class": _CONNECTION_CLASSES[scheme]}
        )
