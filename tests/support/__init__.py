"""What test modules import (conftest.py files hold fixtures and hooks only).

* ``modes``: MODE, SCHEMA_MODE, and the row_only / schema_only skipping (conftest's hook).
* ``demo``: DEMO_HOSTS and DEMO_TITLES of the demo tenants every run starts with.
* ``members``: PASSWORD, make_member(tenant, username, role), admin_login(client, username).
* ``platform``: everything() (all platform rows and schemas), schema_names(), schema_exists().
* ``postgres``: postgres_rows(url, sql), server_url(), database_url(name),
  create_database(url), drop_database(url), database_exists(url).
* ``servers``: the one way to run a server process: start_server / serving (any command,
  RUNSERVER by default, gunicorn(...) for gunicorn), start_production_server, on_test_database(),
  the ServerProcess they return (get, request, url, log_text, stop), Visitor (cookies kept per
  host, admin log-in over HTTP), and manage(*args, env) for manage.py in another process.
* ``catalog``: describe_schema(schema) and differences(a, b), to compare two schemas.
* ``browser``: Chromium and viewport settings of the browser tests.
* ``rls_probe_urls``: views reading and writing tenant rows past the ORM (row-level security).
* ``probe_urls``, ``live_settings``, ``migrate_stages``: a URLconf, a settings module and a
  staged-migrations app that tests (and benchmarks/fleet_migrate.py) load by dotted name.

Nothing is imported here: settings modules below this package are loaded before Django is set
up, so this package must import nothing of Django's.
"""
