"""WSGI entry point (gunicorn). A server process: its statements get DATABASE_STATEMENT_TIMEOUT
(config/settings.py, SERVER_PROCESS)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SERVER_PROCESS", "true")
application = get_wsgi_application()
