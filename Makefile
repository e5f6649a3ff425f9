# Two commands for a fresh machine:  `make run`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
WORKERS ?= 1
export TENANCY_MODE ?= row

.PHONY: install prepare run serve test lint format bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

## Database up to date: created if missing, migrated, demo tenants, (schema mode) spare schemas
prepare: install
	$(PY) manage.py ensure_database
	$(PY) manage.py tenants migrate
	$(PY) manage.py seed_demo_tenants
	@if [ "$(TENANCY_MODE)" = schema ]; then $(PY) manage.py prepare_tenant_schemas; fi

# The job worker (tenants.jobs) beside the server, stopped with it. It makes links outside any
# request (emails), so it is told the server's port unless TENANCY_URL_PORT says otherwise.
WORKER = TENANCY_URL_PORT=$${TENANCY_URL_PORT-$(PORT)} $(PY) manage.py db_worker --queue-name '*' & \
	trap 'kill $$! 2>/dev/null' EXIT INT TERM;

## Set up and start the site and its job worker: migrate, create the demo tenants, serve on
## http://localhost:$(PORT); emails are printed by the worker (EMAIL_URL for a real server)
run: prepare
	@$(WORKER) $(PY) manage.py runserver 0.0.0.0:$(PORT)

## The same site on the production server: static files collected, gunicorn + WhiteNoise.
## More than one worker needs a shared cache (CACHE_URL=redis://...), see docs/operations.md.
serve: prepare
	STATIC_COLLECTED=1 $(PY) manage.py collectstatic --no-input -v0
	@$(WORKER) STATIC_COLLECTED=1 $(VENV)/bin/gunicorn config.wsgi --bind 0.0.0.0:$(PORT) \
	  --workers $(WORKERS) --threads 4 --access-logfile -

## Set up and run the whole test suite: row mode (SQLite, PostgreSQL) and schema mode
test: install
	scripts/test

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	scripts/bench

clean:
	rm -rf $(VENV) db.sqlite3 test-db.sqlite3 artifacts staticfiles media
