"""ASGI entry point: ``uvicorn config.asgi:application`` (see docs/isolation.md, Servers).

Django runs each ASGI request's synchronous code in a thread of its own, so persistent
connections would pile up one per request thread until garbage collection; here the database
connections come from a bounded pool unless DATABASE_POOL says otherwise (config/settings.py).
A server process: its statements get DATABASE_STATEMENT_TIMEOUT (SERVER_PROCESS).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DATABASE_POOL", "true")
os.environ.setdefault("SERVER_PROCESS", "true")
application = get_asgi_application()
