"""Which database errors are an outage (a 503 page), and that page: rendered in the tenant's
look without a query (tenants.runtime.unavailable). The same through a real server, a real
PostgreSQL stopped and restarted: tests/http/test_database_outage.py."""

import sqlite3

import psycopg
import pytest
from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, OperationalError, connection
from django.test import RequestFactory

from home.models import SiteSettings
from tenants.runtime import unavailable
from tenants.runtime.context import tenant_context
from tenants.runtime.middleware import TenantMiddleware
from tests.support.servers import free_port


def _wrapped(driver_error, django_class=OperationalError):
    """``driver_error`` as Django raises it: its own class, the driver's as ``__cause__``."""
    try:
        raise django_class(*driver_error.args) from driver_error
    except DatabaseError as error:
        return error


def _refused():
    """A real connection error: nothing listens on the port."""
    try:
        psycopg.connect(f"postgres://postgres@127.0.0.1:{free_port()}/x", connect_timeout=2)
    except psycopg.OperationalError as error:
        return error
    raise AssertionError("a connection to a free port succeeded")


def _sqlite_error(statement):
    with sqlite3.connect(":memory:") as db:
        try:
            db.execute(statement)
        except sqlite3.OperationalError as error:
            return error
    raise AssertionError(statement)


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(_refused(), id="connection-refused"),
        pytest.param(psycopg.errors.QueryCanceled("statement timeout"), id="statement-timeout"),
        pytest.param(psycopg.errors.AdminShutdown("terminating connection"), id="admin-shutdown"),
        pytest.param(psycopg.errors.CannotConnectNow("starting up"), id="starting-up"),
        pytest.param(psycopg.errors.TooManyConnections("too many clients"), id="too-many"),
        pytest.param(psycopg.errors.LockNotAvailable("lock timeout"), id="lock-timeout"),
        pytest.param(psycopg.errors.ConnectionFailure("reset"), id="connection-failure"),
        pytest.param(sqlite3.OperationalError("database is locked"), id="sqlite-locked"),
    ],
)
def test_outages_are_unavailable(error):
    assert unavailable.is_unavailable(_wrapped(error))
    assert unavailable.is_unavailable(error)


def test_the_pool_timing_out_is_unavailable():
    from psycopg_pool import PoolTimeout

    assert unavailable.is_unavailable(_wrapped(PoolTimeout("couldn't get a connection")))


@pytest.mark.parametrize(
    "error, django_class",
    [
        (psycopg.errors.UniqueViolation("duplicate key"), IntegrityError),
        (psycopg.errors.UndefinedTable('relation "x" does not exist'), DatabaseError),
        (psycopg.errors.SerializationFailure("could not serialize"), OperationalError),
        (psycopg.errors.DeadlockDetected("deadlock detected"), OperationalError),
        (psycopg.InterfaceError("the cursor is closed"), DatabaseError),
        (_sqlite_error("SELECT * FROM no_such_table"), OperationalError),
        (_sqlite_error("SELEKT 1"), OperationalError),
        (RuntimeError("not a database error"), DatabaseError),
    ],
    ids=["integrity", "missing-table", "serialization", "deadlock", "interface", "sqlite-table"]
    + ["sqlite-syntax", "other"],
)
def test_bugs_are_not_outages(error, django_class):
    assert not unavailable.is_unavailable(_wrapped(error, django_class))
    assert not unavailable.is_unavailable(error)


def _fail_on_query(execute, sql, params, many, context):
    raise AssertionError(f"the 503 page ran a query: {sql}")


def _raising(exception):
    def view(request):
        raise exception

    return view


def _through_middleware(host, exception):
    TenantMiddleware(lambda request: None)(RequestFactory().get("/", HTTP_HOST=host))  # cached
    middleware = TenantMiddleware(_raising(exception))
    request = RequestFactory().get("/", HTTP_HOST=host)
    with connection.execute_wrapper(_fail_on_query):
        try:
            middleware(request)
        except Exception as error:  # the test server's handler would call process_exception
            return middleware.process_exception(request, error)
    raise AssertionError("the view did not raise")


def test_the_page_is_in_the_tenants_branding_when_cached_and_runs_no_query(tenants):
    with tenant_context(tenants["acme"]):
        branding = SiteSettings(site_name="Acme Rocket Works", brand_colour="#aa3300")
        cache.set(SiteSettings.CACHE_KEY, branding)
    try:
        response = _through_middleware("acme.localhost", _wrapped(_refused()))
    finally:
        with tenant_context(tenants["acme"]):
            cache.delete(SiteSettings.CACHE_KEY)
    body = response.content.decode()
    assert response.status_code == 503
    assert response["Retry-After"] == str(unavailable.RETRY_AFTER_SECONDS)
    assert "Temporarily unavailable · Acme Rocket Works" in body
    assert "--brand: #aa3300" in body
    assert "Tech Innovations" not in body and "Global Services" not in body


def test_without_cached_branding_the_page_has_the_platforms_colours_and_the_tenants_name(tenants):
    response = _through_middleware("techinnov.localhost", _wrapped(_refused()))
    body = response.content.decode()
    assert response.status_code == 503
    assert "Temporarily unavailable · Tech Innovations" in body
    assert "--brand:" not in body  # the stylesheet's default colours
    assert "Acme" not in body


def test_a_bug_stays_a_500_and_a_deleted_tenant_check_is_not_fooled(tenants):
    error = _wrapped(psycopg.errors.UniqueViolation("duplicate key"), IntegrityError)
    middleware = TenantMiddleware(_raising(error))
    request = RequestFactory().get("/", HTTP_HOST="acme.localhost")
    with pytest.raises(IntegrityError):
        middleware(request)
    assert middleware.process_exception(request, error) is None  # handler500's


def test_a_failing_host_lookup_is_a_503_in_the_plain_look(db):
    def unreachable(execute, sql, params, many, context):
        raise _wrapped(_refused())

    middleware = TenantMiddleware(_raising(AssertionError("the view must not run")))
    with connection.execute_wrapper(unreachable):
        response = middleware(RequestFactory().get("/", HTTP_HOST="cold.localhost"))
    assert response.status_code == 503
    assert "<title>Temporarily unavailable</title>" in response.content.decode()
