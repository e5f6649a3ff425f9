"""Plain Django: the product's settings minus tenancy (apps, middleware, sessions, cache keys).

Database options (DATABASE_URL, CONN_MAX_AGE, health checks) come from config.settings so both
sides of the comparison talk to their database the same way.
"""

from copy import deepcopy

from config import settings as product

BASE_DIR = product.BASE_DIR
SECRET_KEY = product.SECRET_KEY
DEBUG = False
ALLOWED_HOSTS = ["localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "benchmarks.plain",
]
MIDDLEWARE = [m for m in product.MIDDLEWARE if not m.startswith("tenants.")]
ROOT_URLCONF = "benchmarks.plain.urls"

TEMPLATES = deepcopy(product.TEMPLATES)
TEMPLATES[0]["DIRS"] = [*TEMPLATES[0]["DIRS"], BASE_DIR / "home" / "templates"]
TEMPLATES[0]["OPTIONS"]["context_processors"] = [
    "benchmarks.plain.context_processors.site" if p == "home.context_processors.site" else p
    for p in TEMPLATES[0]["OPTIONS"]["context_processors"]
]

DATABASES = deepcopy(product.DATABASES)
DATABASES["default"]["ENGINE"] = DATABASES["default"]["ENGINE"].replace(
    "tenants.backends.postgresql", "django.db.backends.postgresql"
)
DEFAULT_AUTO_FIELD = product.DEFAULT_AUTO_FIELD
CACHES = {  # the product's local cache size, without its tenant key function
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "OPTIONS": {"MAX_ENTRIES": 50_000},
    }
}

SESSION_COOKIE_SECURE = product.SESSION_COOKIE_SECURE
CSRF_COOKIE_SECURE = product.CSRF_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = product.SECURE_CONTENT_TYPE_NOSNIFF
X_FRAME_OPTIONS = product.X_FRAME_OPTIONS
LANGUAGE_CODE = product.LANGUAGE_CODE
TIME_ZONE = product.TIME_ZONE
USE_I18N = product.USE_I18N
USE_TZ = product.USE_TZ
STATIC_URL = product.STATIC_URL
STATIC_ROOT = product.STATIC_ROOT
STORAGES = product.STORAGES
WHITENOISE_USE_FINDERS = product.WHITENOISE_USE_FINDERS
WHITENOISE_AUTOREFRESH = product.WHITENOISE_AUTOREFRESH
LOGGING = product.LOGGING
