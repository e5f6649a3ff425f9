"""The database settings that keep a request from waiting for ever, and a connection that died
under the schema backend (docs/operations.md#database-outages).

* ``DATABASE_STATEMENT_TIMEOUT`` reaches the server in server processes only (SERVER_PROCESS,
  set by config/wsgi.py, config/asgi.py and runserver): on a direct connection as a startup
  option, behind a transaction pooler in every statement's ``SET LOCAL`` prefix (the server
  session keeps none); commands get none.
* A connection killed on the server: the next query of the same tenant reconnects and sets
  that tenant's search_path again (the backend forgets what it had set).
"""

import json

import psycopg
import pytest
from django.db import OperationalError, connection

from tenants.models import Tenant
from tenants.runtime.context import tenant_context
from tests.support.modes import SCHEMA_MODE
from tests.support.servers import manage, on_test_database

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's statement_timeout"
)

SHOW = """
import json, psycopg
from django.db import OperationalError, connection
with connection.cursor() as cursor:
    cursor.execute("SHOW statement_timeout")
    statement = cursor.fetchone()[0]
with psycopg.Cursor(connection.connection) as raw:  # the server session's own, unprefixed
    raw.execute("SHOW statement_timeout")
    session = raw.fetchone()[0]
print(json.dumps([statement, session]))
"""


def _timeouts(**env):
    """(statement_timeout a statement sees, the server session's) in a new process."""
    done = manage("shell", "-c", SHOW, env=on_test_database(**env))
    return tuple(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"SERVER_PROCESS": "true", "DATABASE_STATEMENT_TIMEOUT": "1.5"}, ("1500ms", "1500ms")),
        ({"SERVER_PROCESS": "true"}, ("20s", "20s")),  # the default
        ({"SERVER_PROCESS": "true", "DATABASE_STATEMENT_TIMEOUT": "0"}, ("0", "0")),
        ({"DATABASE_STATEMENT_TIMEOUT": "1.5"}, ("0", "0")),  # a command: none
        (
            {"SERVER_PROCESS": "true", "DATABASE_STATEMENT_TIMEOUT": "1.5"}
            | {"TENANCY_TRANSACTION_POOLER": "true"},
            ("1500ms", "0"),  # per statement, nothing left on the (pooled) server session
        ),
    ],
    ids=["server", "server-default", "server-off", "command", "behind-a-pooler"],
)
def test_the_statement_timeout_reaches_server_processes_only(django_db_setup, env, expected):
    assert _timeouts(**env) == expected


@pytest.mark.schema_only
def test_a_killed_connection_reconnects_in_the_same_tenants_schema(committed_db):
    # Outside a test transaction (the kill would break it), and not a transactional test:
    # its flush at the end would empty the database the whole run shares.
    acme = Tenant.objects.get(slug="acme")
    with tenant_context(acme):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_schemas(false), pg_backend_pid()")
            schemas, pid = cursor.fetchone()
        assert schemas == ["acme"] and connection.search_path_set_schemas == ["acme"]
        with psycopg.connect(on_test_database()["DATABASE_URL"], autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        # The dead connection's next statement fails,
        with pytest.raises(OperationalError), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        connection.close_if_unusable_or_obsolete()  # and the request's end drops it
        with connection.cursor() as cursor:  # a new connection: the path is set again
            cursor.execute("SELECT current_schemas(false), pg_backend_pid()")
            schemas, new_pid = cursor.fetchone()
    assert new_pid != pid and schemas == ["acme"]


@pytest.mark.skipif(not SCHEMA_MODE, reason="the schema backend's bookkeeping")
@pytest.mark.django_db
def test_a_new_connection_forgets_the_search_path_the_old_one_had(tenants):
    with tenant_context(tenants["acme"]):
        connection.ensure_connection()
        with connection.cursor():
            pass
        assert connection.search_path_set_schemas == ["acme"]
        connection.get_new_connection(connection.get_connection_params()).close()
        assert connection.search_path_set_schemas is None
