# The two commands the README gives: `make run` (try it out, embedded default) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
WS_PORT ?= 8001

.PHONY: run test services serve venv lint format migrate clean-data

$(VENV)/.installed: requirements/base.txt requirements/prod.txt requirements/dev.txt
	@command -v pkg-config >/dev/null && dpkg -s libmariadb-dev >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && .ci/install-os-packages.sh; } || true
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/dev.txt
	touch $@

venv: $(VENV)/.installed

## make run: the embedded default (SQLite, in-memory layers, file-system broker) on http://127.0.0.1:8000
run: export DJANGO_DEBUG ?= true
run: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py generate_slots --days 14
	$(PY) manage.py seed_demo
	@trap 'kill 0' INT TERM EXIT; \
	$(VENV)/bin/celery -A opd worker --loglevel=INFO --concurrency=2 & \
	$(VENV)/bin/celery -A opd beat --loglevel=INFO -s .data/celerybeat-schedule & \
	$(VENV)/bin/uvicorn opd.asgi:application --host 127.0.0.1 --port $(PORT) & \
	wait

## make services: start local MariaDB and Redis (idempotent) and print the URLs to use
services:
	@.ci/install-os-packages.sh
	@.ci/services.sh

## make test: the whole suite against real MariaDB and Redis
test: venv
	@.ci/install-os-packages.sh
	@set -a; eval "$$(.ci/services.sh)"; set +a; \
	DJANGO_SETTINGS_MODULE=opd.settings.test $(VENV)/bin/ruff check . && \
	DJANGO_SETTINGS_MODULE=opd.settings.test $(PY) manage.py makemigrations --check --dry-run >/dev/null && \
	DJANGO_SETTINGS_MODULE=opd.settings.test $(VENV)/bin/pytest $(PYTEST_ARGS)

## make serve: the production layout locally: gunicorn (HTTP) + uvicorn (websockets) + Celery worker and beat
serve: venv services
	@set -a; eval "$$(.ci/services.sh)"; set +a; \
	export DJANGO_DEBUG=$${DJANGO_DEBUG:-true}; \
	$(PY) manage.py migrate --noinput && $(PY) manage.py collectstatic --noinput -v0 && \
	$(PY) manage.py generate_slots --days 14 && $(PY) manage.py seed_demo && \
	trap 'kill 0' INT TERM EXIT; \
	CONN_MAX_AGE=60 $(VENV)/bin/gunicorn opd.wsgi:application --bind 127.0.0.1:$(PORT) --workers 2 & \
	CONN_MAX_AGE=0 $(VENV)/bin/uvicorn opd.asgi:application --host 127.0.0.1 --port $(WS_PORT) & \
	$(VENV)/bin/celery -A opd worker --loglevel=INFO --concurrency=2 & \
	$(VENV)/bin/celery -A opd beat --loglevel=INFO -s .data/celerybeat-schedule & \
	wait

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .
