#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if sys.argv[1:2] == ["runserver"]:
        # A thread per request: connections from a bounded pool, not one kept per thread
        # (config/settings.py, DATABASE_POOL).
        os.environ.setdefault("DATABASE_POOL", "true")
        # A server: statements get DATABASE_STATEMENT_TIMEOUT (commands do not).
        os.environ.setdefault("SERVER_PROCESS", "true")
    from django.core.management import execute_from_command_line
    from django.db import OperationalError, connections

    try:
        execute_from_command_line(sys.argv)
    except OperationalError as error:
        # A database that cannot be reached is one line for the operator, not a traceback
        # (--traceback still shows it). An error on an open connection is a bug: raised as is.
        if "--traceback" in sys.argv or any(c.connection for c in connections.all()):
            raise
        where = connections["default"].settings_dict
        sys.exit(
            f"manage.py {' '.join(sys.argv[1:2])}: cannot reach the database "
            f"{where.get('NAME')!s} ({where.get('HOST') or 'local'}): "
            + " ".join(str(error).split())
        )


if __name__ == "__main__":
    main()
