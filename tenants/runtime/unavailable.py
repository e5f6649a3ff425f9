"""The database is unavailable: the request answers 503 with ``Retry-After``, not a 500.

Which errors mean "unavailable" (``is_unavailable``), for any database alias: the server cannot
serve now, and the same request may succeed in a moment. That is psycopg's
``OperationalError`` (Django's wraps it) when

* it has no SQLSTATE: no connection (refused, reset, closed by the server, connect timeout,
  the pool's ``PoolTimeout``);
* or its SQLSTATE is of class 08 (connection exception), 53 (insufficient resources: too many
  connections, out of memory, disk full), 57 (operator intervention: statement timeout or
  cancel ``57014``, admin shutdown ``57P01``, crash shutdown, "the database system is starting
  up / shutting down" ``57P03``) or 58 (system error, I/O), or ``55P03`` (lock_timeout);

on SQLite, "database is locked" (after its busy timeout) and "unable to open database file".
Everything else is a bug to see as a 500: integrity, programming and data errors, a
serialization failure or deadlock (class 40: contention the code must retry, not an outage),
a missing table, and psycopg's ``InterfaceError`` (a closed cursor, a missing adapter: misuse;
psycopg 3 reports a lost connection as ``OperationalError``).

The page (templates/503.html) is rendered without the database: the tenant the middleware
already holds and its branding if the cache holds it (home.models.SiteSettings.cached), else
the site's layout in the platform's colours; when the host lookup itself failed (no tenant
yet), the middleware's plain error page. No context processor runs (they would read the
session and the user). One warning is logged per ``LOG_INTERVAL_SECONDS`` and process, with
how many more requests failed meanwhile; the request is not logged again by ``django.request``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

import psycopg
from django.conf import settings
from django.db import Error as DjangoDatabaseError
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.views import defaults

from tenants.runtime.context import tenant_context

RETRY_AFTER_SECONDS = 5
LOG_INTERVAL_SECONDS = 10.0
_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")
_UNAVAILABLE_STATES = ("55P03",)
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database file")

_PLAIN = {
    "title": "Temporarily unavailable",
    "message": "This site cannot be shown at the moment. Please try again in a few seconds.",
}

logger = logging.getLogger(__name__)
_log_lock = threading.Lock()
_last_warning = float("-inf")
_not_logged = 0


def is_unavailable(exception: BaseException) -> bool:
    """Whether ``exception`` (Django's or the driver's) means the database cannot serve now."""
    error = _driver_error(exception)
    if isinstance(error, psycopg.OperationalError):
        state = error.sqlstate
        return state is None or state[:2] in _UNAVAILABLE_CLASSES or state in _UNAVAILABLE_STATES
    if isinstance(error, psycopg.Error):
        return False
    if type(error).__module__ == "sqlite3" and type(error).__name__ == "OperationalError":
        return str(error).startswith(_SQLITE_UNAVAILABLE)
    return False


# The message of the seal on a tenant's old copy after a move (tenants.operations.move).
MOVED_AWAY = "This tenant moved to cell"


def moved_away(exception: BaseException) -> bool:
    """A write hit the old copy of a tenant that moved to another cell: this process's host
    lookup is stale (it is forgotten, so the next request finds the new cell at once)."""
    error = _driver_error(exception)
    return (
        isinstance(error, psycopg.Error)
        and error.sqlstate == "55P03"
        and str(error).startswith(MOVED_AWAY)
    )


def _driver_error(exception: BaseException) -> BaseException | None:
    """The driver's exception behind Django's wrapper (its ``__cause__``), or None."""
    if isinstance(exception, DjangoDatabaseError):
        return exception.__cause__
    return exception


def response(request, exception: BaseException) -> HttpResponse:
    """The 503 page for ``request`` (its tenant, if resolved), and the rate-limited warning."""
    _warn(exception)
    tenant = getattr(request, "tenant", None)
    if tenant is None:  # the host lookup itself failed: the middleware's plain error page
        body = render_to_string("tenants/error.html", _PLAIN)
    else:
        with tenant_context(tenant):  # cache keys and display names are the tenant's
            branding = _cached_branding()
            if branding is not None:
                site_name = branding.display_name
            else:
                site_name = settings.PLATFORM_NAME if tenant.is_default else tenant.name
            body = _page(request, branding, site_name)
    answer = HttpResponse(body, status=503)
    answer["Retry-After"] = str(RETRY_AFTER_SECONDS)
    answer["Cache-Control"] = "no-store"
    answer._has_been_logged = True  # django.request would log every request at ERROR
    return answer


def server_error(request):
    """``handler500``: the 503 page when the error being handled is an outage raised outside
    the view (a middleware's own query, such as saving the session), where the middleware's
    ``process_exception`` does not see it; Django's 500 page for everything else."""
    exception = sys.exc_info()[1]
    if exception is not None and is_unavailable(exception):
        return response(request, exception)
    return defaults.server_error(request)


def _page(request, branding, site_name) -> str:
    context = {"request": request, "branding": branding, "site_name": site_name}
    try:
        return render_to_string("503.html", context)  # no request: no context processors
    except Exception as error:  # the page must not fail in turn
        logger.warning("The 503 page could not be rendered (%s: %s)", type(error).__name__, error)
        return "<!doctype html><title>Temporarily unavailable</title><h1>Unavailable</h1>"


def _cached_branding():
    from home.models import SiteSettings  # the site's app; imported when first needed

    try:
        return SiteSettings.cached()
    except Exception:  # a cache that fails too: the plain look
        return None


def _warn(exception: BaseException) -> None:
    global _last_warning, _not_logged
    now = time.monotonic()
    with _log_lock:
        if now - _last_warning < LOG_INTERVAL_SECONDS:
            _not_logged += 1
            return
        skipped, _not_logged, _last_warning = _not_logged, 0, now
    error = _driver_error(exception) or exception
    logger.warning(
        "Database unavailable, answering 503 (%s: %s)%s",
        type(error).__name__,
        " ".join(str(error).split())[:300],
        f"; {skipped} more such requests since the last warning" if skipped else "",
    )
