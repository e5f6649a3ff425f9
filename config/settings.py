"""Settings for the multi-tenant site.

Everything that differs between deployments comes from the environment (django-environ).
The one switch that matters most is ``TENANCY_MODE``:

* ``row`` (default): shared tables with a ``tenant`` column, scoped automatically.
  Works on SQLite (the default ``DATABASE_URL``) and PostgreSQL.
* ``schema``: one PostgreSQL schema per tenant, on top of django-tenants.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.crypto import salted_hmac

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-key-change-me-in-production")
DEBUG = env.bool("DEBUG", default=False)

TENANCY_MODE = env("TENANCY_MODE", default="row")
if TENANCY_MODE not in ("row", "schema"):
    raise ImproperlyConfigured(f"TENANCY_MODE must be 'row' or 'schema', not {TENANCY_MODE!r}")
SCHEMA_MODE = TENANCY_MODE == "schema"

# The platform's own name, shown on its site (the landing page's header, lead text and footer)
# unless its branding names it otherwise.
PLATFORM_NAME = env("PLATFORM_NAME", default="Default Tenant")

# --- Tenancy -----------------------------------------------------------------------------------
# Slug of the tenant that serves unknown hosts and the platform's own pages (sign-up, log-in).
TENANCY_DEFAULT_TENANT = env("TENANCY_DEFAULT_TENANT", default="default")
# What an unknown Host gets: "default" (the default tenant) or "404".
TENANCY_UNKNOWN_HOST = env("TENANCY_UNKNOWN_HOST", default="default")
# Base domain of self-service sites: <slug>.<TENANT_BASE_DOMAIN>.
TENANT_BASE_DOMAIN = env("TENANT_BASE_DOMAIN", default="localhost")
# Port added to absolute tenant URLs. Unset: the port the server itself listens on (from the
# socket, never from the Host header), left out when it is 80/443. "" leaves it out always
# (behind a reverse proxy).
TENANCY_URL_PORT = env("TENANCY_URL_PORT", default=None)
# Scheme of absolute tenant URLs: "https" in production (emails sent by jobs have no request to
# ask). Unset: the request's own, and "http" outside a request.
TENANCY_URL_SCHEME = env("TENANCY_URL_SCHEME", default=None)
# How often (seconds) a process checks the shared cache for host-lookup invalidations made by
# other processes. 0 checks on every request. Only used when the tenancy cache is shared.
TENANCY_RESOLVER_REVALIDATE_SECONDS = env.float("TENANCY_RESOLVER_REVALIDATE_SECONDS", default=1.0)
# Schema mode: close a database connection at the end of the request once it has served more than
# this many distinct tenant schemas, public not counted (a PostgreSQL server process keeps catalog
# caches for every schema it touches). 0 = never. Why, and what it bounds and costs:
# docs/decisions/0003-connection-ceiling.md, docs/benchmarks.md.
TENANCY_CONNECTION_MAX_SCHEMAS = env.int("TENANCY_CONNECTION_MAX_SCHEMAS", default=1000)
# The database connection goes through a transaction-pooling proxy (PgBouncer with
# pool_mode=transaction): the schema backend then never sets anything for the server session and
# sends the tenant's search_path with every statement instead (tenants.backends.transaction_state).
TENANCY_TRANSACTION_POOLER = env.bool("TENANCY_TRANSACTION_POOLER", default=False)
# Most host lookups a process keeps (memory per entry: docs/benchmarks.md); when full the cache
# starts over.
TENANCY_RESOLVER_MAX_HOSTS = env.int("TENANCY_RESOLVER_MAX_HOSTS", default=50_000)

# --- Self-service sign-up and provisioning (accounts.services, tenants.provisioning) ----------
# Creating a platform user (sign-up, platform admin, shell) provisions their site. Off: only the
# sign-up pages and `manage.py provision_tenant` do.
TENANCY_AUTO_PROVISION = env.bool("TENANCY_AUTO_PROVISION", default=True)
# Whether superusers (createsuperuser) get a site of their own too.
TENANCY_PROVISION_SUPERUSERS = env.bool("TENANCY_PROVISION_SUPERUSERS", default=False)
# Site names no one may sign up with, on top of tenants.validators.BUILTIN_RESERVED_SLUGS.
TENANCY_RESERVED_SLUGS = env.list("TENANCY_RESERVED_SLUGS", default=[])
# Schema mode: spare tenant schemas kept ready (tenants.provisioning.schema_pool); 0: no pool.
TENANCY_SCHEMA_POOL_SIZE = env.int("TENANCY_SCHEMA_POOL_SIZE", default=10)
# "background": a process that claims a spare refills the pool in a thread; "command": only
# `manage.py prepare_tenant_schemas` fills it (cron, deploy).
TENANCY_SCHEMA_POOL_REFILL = env("TENANCY_SCHEMA_POOL_REFILL", default="background")
if TENANCY_SCHEMA_POOL_REFILL not in ("background", "command"):
    raise ImproperlyConfigured("TENANCY_SCHEMA_POOL_REFILL must be 'background' or 'command'")

# Host validation is done by the tenant resolver: Django's get_host() accepts only the host the
# resolver accepted for the current request (tenants.runtime.hosts), so domains added at run
# time work without "*".
from tenants.runtime.hosts import ResolvedHosts  # noqa: E402  (no Django imports in that module)

ALLOWED_HOSTS = ResolvedHosts()
USE_X_FORWARDED_HOST = env.bool("USE_X_FORWARDED_HOST", default=False)

# --- Applications ------------------------------------------------------------------------------
SHARED_APPS = [
    "django_tenants",
    "tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "accounts.apps.TenantAdminConfig",
    "accounts",
    "home",
    "django_tasks",  # background jobs: Django 6's tasks framework, backported (tenants.jobs)
    "django_tasks_db",  # the default job queue: a table in the public schema (platform data)
]
# Developer tooling (demo tenants, benchmark tenants): no models; production may leave it out.
DEV_TOOLS = env.bool("DEV_TOOLS", default=True)
if DEV_TOOLS:
    SHARED_APPS.append("devtools")
# Apps whose tables every tenant schema gets (schema mode). In schema mode the default tenant
# lives in the public schema, so these are also in SHARED_APPS.
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "accounts.apps.TenantAdminConfig",
    "accounts",
    "home",
]

if SCHEMA_MODE:
    INSTALLED_APPS = list(SHARED_APPS) + [a for a in TENANT_APPS if a not in SHARED_APPS]
else:
    INSTALLED_APPS = [a for a in SHARED_APPS if a != "django_tenants"]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
TENANT_COLOR_ADMIN_APPS = False  # the admin looks the same in both modes, in the site's colours

MIDDLEWARE = [
    "tenants.runtime.middleware.TenantMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files, in runserver and gunicorn alike
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "home.context_processors.site",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
_engine = DATABASES["default"]["ENGINE"]
if SCHEMA_MODE:
    if "postgresql" not in _engine:
        raise ImproperlyConfigured(
            "TENANCY_MODE=schema needs PostgreSQL: set DATABASE_URL=postgres://user@host:5432/name"
        )
    # django-tenants' backend, extended to take the schema from the current tenant context.
    DATABASES["default"]["ENGINE"] = "tenants.backends.postgresql"
    DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
if "sqlite" in _engine:
    # WAL: readers never wait for the writer, and a commit is not an fsync of the database file
    # (synchronous=NORMAL: a power cut may lose the last commits, never corrupt the file).
    # IMMEDIATE transactions take the write lock up front, so concurrent writers queue (timeout)
    # instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
if "postgresql" in _engine and TENANCY_TRANSACTION_POOLER:
    # Server-side cursors outlive their transaction, which a transaction pooler cannot keep.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    # Nor can it keep prepared statements (PgBouncer 1.18): Django binds on the client and
    # prepares nothing by default; these two options would undo that.
    _options = DATABASES["default"].get("OPTIONS", {})
    if str(_options.get("server_side_binding", "")).lower() in ("true", "1") or (
        _options.get("prepare_threshold") not in (None, "", "None")
    ):
        raise ImproperlyConfigured(
            "TENANCY_TRANSACTION_POOLER: remove server_side_binding / prepare_threshold from "
            "DATABASE_URL's options; prepared statements do not survive a transaction pooler."
        )
# Connections to PostgreSQL, bounded per server process either way:
# * a pool (DATABASE_POOL=true; psycopg_pool, Django 5.1+), the default of the servers that run
#   a thread per request or per ASGI request (runserver: manage.py; ASGI: config/asgi.py): at
#   most DATABASE_POOL_MAX_SIZE per process, however many threads. Each checkout is a new
#   session to the backend, which sets its search_path again. A pooled connection lives at most
#   DATABASE_POOL_MAX_LIFETIME seconds: that, not TENANCY_CONNECTION_MAX_SCHEMAS (a count per
#   checkout here), bounds its PostgreSQL server process's catalog caches.
# * persistent connections (CONN_MAX_AGE), the default elsewhere: one per thread, for servers
#   with a fixed number of threads (gunicorn --threads N: workers x N), commands and tests.
if "postgresql" in _engine and env.bool("DATABASE_POOL", default=False):
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=4),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),  # waiting for a connection
        "max_lifetime": env.float("DATABASE_POOL_MAX_LIFETIME", default=600.0),
        # A failed connection attempt is retried with a growing delay (1, 2, 4 ... s) for this
        # long, then the next request starts over at once: after an outage of any length the
        # pool is back within about this many seconds (psycopg_pool's default, 300, could make
        # a long outage's recovery take minutes).
        "reconnect_timeout": env.float("DATABASE_POOL_RECONNECT_TIMEOUT", default=4.0),
    }
    # Each checkout is checked (an empty query): after a PostgreSQL restart the pool replaces
    # its dead connections instead of handing them to requests.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# Tests: a file for SQLite (not :memory:) so a real server process started by a test can share
# it; TEST_DATABASE_NAME picks another name (parallel checkouts on one PostgreSQL server).
_test_db_default = str(BASE_DIR / "test-db.sqlite3") if "sqlite" in _engine else None
DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default=_test_db_default)}

# Row-level security (row mode on PostgreSQL; docs/row-level-security.md): PostgreSQL itself
# admits only the current tenant's rows. DATABASE_URL is then the owner's connection (alias
# "owner": migrations, and platform code that must see every tenant), and the site connects as
# DATABASE_APP_URL's role, which neither owns the tables nor bypasses the policies; by default
# the same server and database as role tenantsite_app (`manage.py ensure_database` creates it).
TENANCY_ROW_LEVEL_SECURITY = env.bool(
    "TENANCY_ROW_LEVEL_SECURITY", default=not SCHEMA_MODE and "postgresql" in _engine
)
if TENANCY_ROW_LEVEL_SECURITY:
    if SCHEMA_MODE or "postgresql" not in _engine:
        raise ImproperlyConfigured(
            "TENANCY_ROW_LEVEL_SECURITY needs row mode on PostgreSQL (schema mode has schemas)."
        )
    _owner = {**DATABASES["default"], "ENGINE": "tenants.backends.rowsecurity", "CONN_MAX_AGE": 0}
    _owner["OPTIONS"] = {k: v for k, v in _owner.get("OPTIONS", {}).items() if k != "pool"}
    _owner["TEST"] = dict(_owner["TEST"])
    _app_url = env("DATABASE_APP_URL", default="")
    _app = env.db_url_config(_app_url) if _app_url else {"USER": "tenantsite_app", "PASSWORD": ""}
    DATABASES = {
        "default": {
            **DATABASES["default"],
            **{k: v for k, v in _app.items() if k in ("NAME", "USER", "PASSWORD", "HOST", "PORT")},
            "ENGINE": "tenants.backends.rowsecurity",
            "DISABLE_SERVER_SIDE_CURSORS": True,  # the tenant is sent per transaction
        },
        "owner": _owner,
    }

# Cells (docs/cells.md): more PostgreSQL servers holding tenants' data, beside the control
# database (DATABASE_URL: tenants, domains, platform accounts, the tenant -> cell map).
# TENANCY_CELLS="eu1=postgres://...,eu2=postgres://..." gives aliases cell_eu1, cell_eu2 (with
# row-level security also cell_<name>_owner, as default has owner). Empty: one server.
TENANCY_CELLS: dict[str, str] = {}  # cell name -> database alias
_cells = env("TENANCY_CELLS", default="").strip()
if _cells:
    from tenants.cellconfig import cell_databases  # noqa: E402  (no Django imports there)

    if "postgresql" not in _engine:
        raise ImproperlyConfigured("TENANCY_CELLS needs PostgreSQL (DATABASE_URL=postgres://...).")
    # Each cell's URL is like DATABASE_URL: with row-level security, the tables' owner's; the
    # site then connects to the cell as the control database's application role.
    _cell_databases = cell_databases(
        _cells,
        DATABASES["default"],
        env.db_url_config,
        connect_timeout=env.int("TENANCY_CELL_CONNECT_TIMEOUT", default=3),
        owner=DATABASES.get("owner") if TENANCY_ROW_LEVEL_SECURITY else None,
    )
    DATABASES.update(_cell_databases)
    TENANCY_CELLS = {
        alias.removeprefix("cell_"): alias
        for alias in _cell_databases
        if not alias.endswith("_owner")
    }
    DATABASE_ROUTERS = ["tenants.cells.CellRouter", *globals().get("DATABASE_ROUTERS", [])]
# Placement stops giving a cell new tenants at this many (0: no limit; an operator's --cell pin
# is not limited). The measured defaults and why: docs/cells-capacity.md.
TENANCY_CELL_MAX_TENANTS = env.int(
    "TENANCY_CELL_MAX_TENANTS", default=5_000 if SCHEMA_MODE else 100_000
)

# Outages and slow queries (docs/operations.md#database-outages): no request waits for ever.
# A connection attempt gives up after DATABASE_CONNECT_TIMEOUT seconds (every process). In server
# processes (SERVER_PROCESS, set by config/wsgi.py, config/asgi.py and `manage.py runserver`) a
# statement is cancelled after DATABASE_STATEMENT_TIMEOUT seconds (0: never); commands
# (migrations, fleet operations, job workers) get no statement timeout unless run with
# SERVER_PROCESS=true. Either way the request answers the 503 page (tenants.runtime.unavailable).
DATABASE_CONNECT_TIMEOUT = env.int("DATABASE_CONNECT_TIMEOUT", default=5)
SERVER_PROCESS = env.bool("SERVER_PROCESS", default=False)
DATABASE_STATEMENT_TIMEOUT = (
    env.float("DATABASE_STATEMENT_TIMEOUT", default=20.0) if SERVER_PROCESS else 0.0
)
for _alias in DATABASES.values():
    if "postgresql" in _alias["ENGINE"] or "rowsecurity" in _alias["ENGINE"]:
        _options = _alias.setdefault("OPTIONS", {})
        _options.setdefault("connect_timeout", DATABASE_CONNECT_TIMEOUT)
        _ms = round(DATABASE_STATEMENT_TIMEOUT * 1000)
        if _ms and TENANCY_TRANSACTION_POOLER:
            # PgBouncer does not pass startup options on: the timeout rides with the tenant
            # state in every statement's SET LOCAL prefix (tenants.backends.transaction_state).
            _alias["STATEMENT_TIMEOUT_MS"] = _ms
        elif _ms:
            _options["options"] = f"{_options.get('options', '')} -c statement_timeout={_ms}"
            _options["options"] = _options["options"].strip()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Caches ------------------------------------------------------------------------------------
# One cache, for application data (branding); its keys carry the current tenant
# (tenants.runtime.cache) behind a per-deployment prefix. Nothing that decides which tenant a
# request gets is cached here (host lookups are invalidated through the database), so Redis may
# go away: with CACHE_URL=redis://... its errors are misses, each wait is short and a server that
# failed is left alone for a moment (tenants.runtime.rediscache).
_cache_url = env("CACHE_URL", default="locmemcache://")
_cache = env.cache_url_config(_cache_url)
# Every key starts with it, so deployments sharing one Redis never share an entry. Default:
# derived from SECRET_KEY, which all processes of one deployment share and no two deployments
# should (CACHE_URL's ?key_prefix= works too).
CACHE_KEY_PREFIX = (
    env("CACHE_KEY_PREFIX", default="")
    or _cache.pop("KEY_PREFIX", "")
    or _cache.pop("key_prefix", "")
    or "d" + salted_hmac("tenants.cache-key-prefix", "", secret=SECRET_KEY).hexdigest()[:10]
)
CACHES = {
    "default": {
        **_cache,
        "KEY_PREFIX": CACHE_KEY_PREFIX,
        "KEY_FUNCTION": "tenants.runtime.cache.make_key",
    },
}
if _cache["BACKEND"] == "django_redis.cache.RedisCache":
    _redis_options = CACHES["default"].setdefault("OPTIONS", {})
    _redis_options.setdefault("IGNORE_EXCEPTIONS", True)
    _redis_options.setdefault("SOCKET_CONNECT_TIMEOUT", 0.25)  # seconds; ?socket_connect_timeout=
    _redis_options.setdefault("SOCKET_TIMEOUT", 0.25)  # ?socket_timeout= in CACHE_URL
    _redis_options.setdefault("CONNECTION_FACTORY", "tenants.runtime.rediscache.ConnectionFactory")
if _cache_url.startswith("locmemcache"):
    CACHES["default"]["LOCATION"] = "app"
    # Entries are per tenant (branding): Django's default of 300 made every request a miss and a
    # cull beyond 300 tenants (benchmarks/home_page.py; entry sizes in docs/benchmarks.md).
    CACHES["default"].setdefault("OPTIONS", {}).setdefault("MAX_ENTRIES", 50_000)

# --- Sessions and auth -------------------------------------------------------------------------
SESSION_ENGINE = (
    "tenants.runtime.sessions"  # database sessions bound to the tenant they were made on
)
AUTHENTICATION_BACKENDS = ["accounts.backends.TenantMembershipBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

# --- Security ----------------------------------------------------------------------------------
# Request bodies larger than this (bytes; Django's default) are refused with a 400 before any
# form or JSON is parsed. Under ASGI a body sent without Content-Length is read before this
# check can apply: a reverse proxy's limit (nginx client_max_body_size) is the first wall.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- I18n / static -----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# WhiteNoise serves static files in every server. STATIC_COLLECTED=1 (production, after
# `manage.py collectstatic`): compressed files with hashed names from STATIC_ROOT, cached for
# a year. Otherwise (make run, tests): straight from the apps' static/ folders.
STATIC_COLLECTED = env.bool("STATIC_COLLECTED", default=False)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},  # media, see below
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_COLLECTED
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not STATIC_COLLECTED
# --- Media: uploads of each tenant under tenants/<tenant id>/ (tenants.media) -----------------
# Served at MEDIA_URL by the application only on the uploading tenant's host; how the bytes leave
# (MEDIA_SERVING): "app" streams them, "x-accel" hands them to nginx (X-Accel-Redirect to
# MEDIA_ACCEL_PREFIX, an internal location), "redirect" sends the browser to a short-lived signed
# URL of the object store. docs/operations.md#media.
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
MEDIA_STORAGE = env("MEDIA_STORAGE", default="filesystem")
MEDIA_SERVING = env("MEDIA_SERVING", default="redirect" if MEDIA_STORAGE == "s3" else "app")
MEDIA_ACCEL_PREFIX = env("MEDIA_ACCEL_PREFIX", default="/protected-media/")
MEDIA_MAX_UPLOAD_MB = env.float("MEDIA_MAX_UPLOAD_MB", default=2.0)  # per image
MEDIA_TENANT_QUOTA_MB = env.float("MEDIA_TENANT_QUOTA_MB", default=50.0)  # per tenant, 0 = none
if MEDIA_STORAGE not in ("filesystem", "s3") or MEDIA_SERVING not in ("app", "x-accel", "redirect"):
    raise ImproperlyConfigured(
        "MEDIA_STORAGE must be 'filesystem' or 's3'; MEDIA_SERVING 'app', 'x-accel' or 'redirect'"
    )
if MEDIA_STORAGE == "s3":
    # Any S3-compatible store, through django-storages (pip install -e '.[s3]'). Private objects;
    # the browser gets a signed URL valid for MEDIA_S3_URL_SECONDS, after the tenant check.
    STORAGES["default"] = {
        "BACKEND": "tenants.media_s3.TenantS3Storage",
        "OPTIONS": {
            "bucket_name": env("MEDIA_S3_BUCKET"),
            "endpoint_url": env("MEDIA_S3_ENDPOINT_URL", default=None),
            "region_name": env("MEDIA_S3_REGION", default=None),
            "access_key": env("MEDIA_S3_ACCESS_KEY_ID", default=None),
            "secret_key": env("MEDIA_S3_SECRET_ACCESS_KEY", default=None),
            "querystring_auth": True,
            "querystring_expire": env.int("MEDIA_S3_URL_SECONDS", default=300),
            "file_overwrite": False,
            "default_acl": None,
        },
    }
WHITENOISE_AUTOREFRESH = not STATIC_COLLECTED  # edits show without a restart

# --- Background jobs (tenants.jobs; docs/operations.md#background-jobs) -----------------------
# "database": jobs wait in a table of the project's database and `manage.py db_worker` runs them
# (make run and make serve start one). "rq": Redis queues (RQ) at JOBS_REDIS_URL, run by
# `manage.py rqworker` (pip install -e '.[redis]').
JOBS_BACKEND = env("JOBS_BACKEND", default="database")
if JOBS_BACKEND == "database":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
elif JOBS_BACKEND == "rq":
    INSTALLED_APPS.append("django_rq")
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    RQ_QUEUES = {"default": {"URL": env("JOBS_REDIS_URL", default="redis://127.0.0.1:6379/1")}}
else:
    raise ImproperlyConfigured(f"JOBS_BACKEND must be 'database' or 'rq', not {JOBS_BACKEND!r}")

# --- Email (sent by jobs: accounts.emails) -----------------------------------------------------
# EMAIL_URL: smtp://user:password@host:587 (smtp+tls://, smtp+ssl:// too), or consolemail:// (the
# default: mails are printed by the worker that sends them).
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# The address every site sends from; the name in front of it is the site's own.
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default=f"noreply@{TENANT_BASE_DOMAIN}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")},
}
