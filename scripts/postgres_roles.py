"""Create the two database roles of row-level security on a PostgreSQL server, if missing, and
print the owner's URL (the given URL, as that role).

    scripts/postgres_roles.py postgres://postgres@127.0.0.1:5432/tenantsite
    -> postgres://tenantsite_owner@127.0.0.1:5432/tenantsite

The given URL must be a superuser's (granting BYPASSRLS needs one). tenantsite_owner owns the
tables and bypasses the policies (migrations, platform code that sees every tenant; CREATEDB for
test databases); tenantsite_app is the site's own role. Both without password: for the local
server, which trusts local connections. Safe to run at the same time from several checkouts.
"""

import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tenants.rls import create_role_sql  # noqa: E402

OWNER, APP = "tenantsite_owner", "tenantsite_app"


def main(url: str) -> str:
    parts = urlsplit(url)
    server = urlunsplit(parts._replace(path="/postgres"))  # roles belong to the whole server
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as admin:
        admin.execute(create_role_sql(OWNER, "LOGIN CREATEDB BYPASSRLS"))
        admin.execute(create_role_sql(APP, "LOGIN"))
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{OWNER}@{host}"))


if __name__ == "__main__":
    print(main(sys.argv[1]))
