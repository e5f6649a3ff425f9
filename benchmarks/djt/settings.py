"""django-tenants as its documentation sets it up, on the plain baseline's settings."""

from copy import deepcopy

from benchmarks.plain.settings import *  # noqa: F403
from benchmarks.plain.settings import DATABASES as _PLAIN_DATABASES
from benchmarks.plain.settings import MIDDLEWARE as _PLAIN_MIDDLEWARE

ALLOWED_HOSTS = [".localhost"]

SHARED_APPS = [
    "django_tenants",
    "benchmarks.djt",
    "django.contrib.admin",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "benchmarks.plain",
]
TENANT_APPS = [
    "django.contrib.admin",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "benchmarks.plain",
]
INSTALLED_APPS = list(SHARED_APPS)
TENANT_MODEL = "djt.Client"
TENANT_DOMAIN_MODEL = "djt.Domain"

MIDDLEWARE = ["django_tenants.middleware.main.TenantMainMiddleware", *_PLAIN_MIDDLEWARE]
ROOT_URLCONF = "benchmarks.djt.urls"

# Cache keys per schema, as django-tenants documents (the branding is cached per tenant).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "OPTIONS": {"MAX_ENTRIES": 50_000},
    }
}

DATABASES = deepcopy(_PLAIN_DATABASES)
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
