# `make run` tries the product out (embedded default), `make test` runs the checks and the whole suite on
# MariaDB and Redis (`make test-fast` the inner loop), `make serve` runs the production process layout
# locally on MariaDB and Redis.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
WS_PORT ?= 8001
# Two xdist workers: one per core on the 2-core CI machine.
PYTEST_ARGS ?= -n 2
BEAT := $(VENV)/bin/celery -A opd beat --loglevel=INFO --scheduler opd.core.beat:LeaderDatabaseScheduler

.PHONY: run test test-fast services serve cluster venv lint format clean-data bench requirements

# requirements/*.txt are compiled (`make requirements`) with every package pinned and hashed: pip refuses
# anything else. Production installs requirements/prod.txt the same way.
$(VENV)/.installed: requirements/base.txt requirements/prod.txt requirements/dev.txt
	PYTHON=$(PYTHON) .ci/install-os-packages.sh build
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r requirements/dev.txt
	touch $@

venv: $(VENV)/.installed

## make requirements: recompile requirements/*.txt from requirements/*.in with pip-tools, in layer order
## (prod is constrained by base, dev by prod). Existing pins are kept; to move one, pass
## PIP_COMPILE_ARGS="--upgrade-package NAME" (or NAME==VERSION).
PIP_COMPILE := $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
  --no-emit-index-url --no-emit-find-links --no-emit-trusted-host $(PIP_COMPILE_ARGS)
requirements: venv
	$(PIP_COMPILE) -o requirements/base.txt requirements/base.in
	$(PIP_COMPILE) -o requirements/prod.txt requirements/prod.in
	$(PIP_COMPILE) -o requirements/dev.txt requirements/dev.in

# The static checks, in the order `make test` runs them; `make lint` runs them alone (no services needed).
CHECKS := $(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy && \
  $(VENV)/bin/lint-imports --no-cache

# Prefix of the test recipes: MariaDB and Redis started (or reused) by .ci/services.sh, whose URLs are
# used unless DATABASE_URL / REDIS_URL are already set, so two checkouts sharing the servers can keep
# apart (tests only create and drop their own test_* database and write prefixed Redis keys).
define test_env
db="$${DATABASE_URL:-}"; redis="$${REDIS_URL:-}"; \
urls=$$(.ci/services.sh) || exit 1; set -a; eval "$$urls"; set +a; \
export DATABASE_URL="$${db:-$$DATABASE_URL}" REDIS_URL="$${redis:-$$REDIS_URL}"; \
export DJANGO_SETTINGS_MODULE=opd.settings.test
endef

# Fails early, with a message, when something already listens on the port: a server that cannot bind
# would otherwise leave the others running without it.
define require_free_port
if (exec 3<>/dev/tcp/$(HOST)/$(1)) 2>/dev/null; then \
  echo "Port $(1) on $(HOST) is in use; stop whatever listens there first (or pass PORT=... WS_PORT=...)." >&2; \
  exit 1; \
fi
endef

# Prefix of a recipe that runs servers side by side: `start CMD...` runs one in the background. When
# any of them exits, or on Ctrl-C (SIGINT) or SIGTERM, the others are stopped and waited for. Only the
# pids started here are signalled: `kill 0` would also hit whatever script ran make in its process group.
define supervise
pids=(); \
start() { "$$@" & pids+=("$$!"); }; \
stop() { trap - INT TERM EXIT; kill -TERM "$${pids[@]}" 2>/dev/null; wait; }; \
trap 'stop; exit 130' INT; trap 'stop; exit 143' TERM; trap stop EXIT
endef

# Suffix of such a recipe: waits while every server runs, and ends (the EXIT trap stopping the rest)
# when one of them exits, or when make alone was sent SIGINT. A terminal's Ctrl-C signals the whole
# process group, which the INT trap handles; but GNU make, signalled by itself, only waits for its
# children and never tells them. It stops catching the signal once it has had it, which shows in its
# /proc status (SigCgt), so the recipe can notice that too.
define wait_servers
make_sigcgt() { sed -n 's/^SigCgt:\s*//p' /proc/$$PPID/status 2>/dev/null; }; \
caught=$$(make_sigcgt); \
while sleep 1; do \
  for pid in "$${pids[@]}"; do \
    kill -0 "$$pid" 2>/dev/null && continue; \
    wait "$$pid"; echo "A server stopped (exit $$?); stopping the others." >&2; exit 1; \
  done; \
  [ "$$(make_sigcgt)" = "$$caught" ] || { echo "make was interrupted; stopping the servers." >&2; exit 130; }; \
done
endef

## make run: the embedded default (SQLite, local-memory cache, in-memory channel layer, file-system
## Celery broker) on http://127.0.0.1:8000, with a Celery worker and beat. Ctrl-C stops all three.
run: export DJANGO_DEBUG ?= true
# HTTP runs on a2wsgi's request threads (opd/asgi.py): each keeps its database connection, as the bench
# measures this server. Websocket frames go uncompressed (here and in `make serve`): they are a few hundred
# bytes of JSON, and per-message deflate was a quarter of the server's CPU per fan-out delivery, plus a
# compressor's memory per open socket.
run: export CONN_MAX_AGE ?= 60
run: venv
	@$(call require_free_port,$(PORT))
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py seed_demo
	$(PY) manage.py generate_slots
	@# gossip, mingle and heartbeats broadcast through fan-out queues; the file-system broker never
	@# deletes a stopped worker's queue, so its messages would pile up on disk from run to run.
	@$(supervise); \
	start $(VENV)/bin/celery -A opd worker --loglevel=INFO --concurrency=2 \
	  --without-gossip --without-mingle --without-heartbeat; \
	start $(BEAT); \
	start $(VENV)/bin/uvicorn opd.asgi:application --host $(HOST) --port $(PORT) --lifespan off \
	  --ws-per-message-deflate false; \
	$(wait_servers)

## make services: start local MariaDB and Redis (idempotent) and print the URLs to use; REPLICA=1 also
## starts a read replica of MariaDB on port 3307 (the primary then writes a binary log) and prints its URL
REPLICA ?= 0
services:
	@.ci/install-os-packages.sh
	@REPLICA=$(REPLICA) .ci/services.sh

## make test: what CI runs (.ci/run): ruff check, ruff format --check, mypy, lint-imports, the migrations
## check, then the whole suite against real MariaDB and Redis
test: venv
	@.ci/install-os-packages.sh
	@$(test_env); \
	$(CHECKS) && \
	$(PY) manage.py makemigrations --check --dry-run && \
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## make test-fast: the inner loop: the suite without the slow tests (real workers and servers) and the
## browser tests, no static checks (`make lint test-fast` adds them)
test-fast: venv
	@.ci/install-os-packages.sh
	@$(test_env); \
	$(VENV)/bin/pytest $(PYTEST_ARGS) -m "not slow and not browser"

# Part of a recipe that runs the production processes on loopback (serve, cluster): a secret key and an
# audit key kept in .data/ unless the environment gives them, then migrate, static files, demo data, slots.
define production_prepare
if [ -z "$${DJANGO_SECRET_KEY:-}" ]; then \
  [ -s .data/secret-key ] || (umask 077; $(PY) -c 'import secrets; print(secrets.token_urlsafe(50))' >.data/secret-key); \
  export DJANGO_SECRET_KEY=$$(cat .data/secret-key); \
fi; \
if [ -z "$${OPD_AUDIT_KEY:-}" ]; then \
  [ -s .data/audit-key ] || (umask 077; $(PY) -c 'import secrets; print(secrets.token_urlsafe(50))' >.data/audit-key); \
  export OPD_AUDIT_KEY=$$(cat .data/audit-key); \
fi; \
set -e; \
$(PY) manage.py migrate --noinput; \
$(PY) manage.py collectstatic --noinput -v0; \
$(PY) manage.py seed_demo --force; \
$(PY) manage.py generate_slots; \
set +e
endef

## make serve: the production process layout on MariaDB and Redis, DEBUG off, with the demo data:
## gunicorn (HTTP, persistent database connections) on :8000, uvicorn (websockets, CONN_MAX_AGE=0) on
## :8001, Celery worker and beat (the worker at nice 10: background work yields the cores to requests on a
## shared machine). All four write their metrics into PROMETHEUS_MULTIPROC_DIR (default .data/prometheus,
## emptied at start), which /metrics adds up (METRICS_TOKEN). Plain HTTP on loopback, so the settings are base.py's with a secret key and an audit
## key kept in .data/; behind TLS, DJANGO_SETTINGS_MODULE=opd.settings.production. Gunicorn's control socket
## is off: its default path is one per user, which a second checkout's gunicorn would take over.
serve: venv
	@.ci/install-os-packages.sh
	@$(call require_free_port,$(PORT)); $(call require_free_port,$(WS_PORT))
	@urls=$$(.ci/services.sh) || exit 1; set -a; eval "$$urls"; set +a; \
	export DJANGO_DEBUG=$${DJANGO_DEBUG:-false}; \
	export WEBSOCKET_BASE_URL=$${WEBSOCKET_BASE_URL:-ws://$(HOST):$(WS_PORT)}; \
	$(production_prepare); \
	export PROMETHEUS_MULTIPROC_DIR=$${PROMETHEUS_MULTIPROC_DIR:-$(CURDIR)/.data/prometheus}; \
	mkdir -p "$$PROMETHEUS_MULTIPROC_DIR"; find "$$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -name '*.db' -delete; \
	$(supervise); \
	start env CONN_MAX_AGE=60 $(VENV)/bin/gunicorn opd.wsgi:application --bind $(HOST):$(PORT) --workers 2 \
	  --access-logfile - --no-control-socket; \
	start env CONN_MAX_AGE=0 $(VENV)/bin/uvicorn opd.asgi:application --host $(HOST) --port $(WS_PORT) \
	  --lifespan off --ws-per-message-deflate false; \
	start nice -n 10 $(VENV)/bin/celery -A opd worker --loglevel=INFO --concurrency=2; \
	start $(BEAT); \
	$(wait_servers)

## make cluster: several nodes on loopback, as in production (README, "Running in production"): nginx on
## :$(PORT) in front of two gunicorn nodes (:PORT+10, :PORT+11) and two ASGI nodes for /ws/ (:PORT+20,
## :PORT+21), a Celery worker and a beat on each node (one beat sends: opd.core.beat), on MariaDB and Redis,
## DEBUG off, with the demo data. Config and logs in .data/cluster/. A process that dies is restarted.
## DATABASE_URL / REDIS_URL, when set, are used instead of the ones .ci/services.sh prints.
cluster: venv
	@.ci/install-os-packages.sh
	@for port in $(PORT) $$(($(PORT)+10)) $$(($(PORT)+11)) $$(($(PORT)+20)) $$(($(PORT)+21)); do \
	  $(call require_free_port,$$port); \
	done
	@db="$${DATABASE_URL:-}"; redis="$${REDIS_URL:-}"; \
	urls=$$(.ci/services.sh) || exit 1; set -a; eval "$$urls"; set +a; \
	export DATABASE_URL="$${db:-$$DATABASE_URL}" REDIS_URL="$${redis:-$$REDIS_URL}"; \
	export DJANGO_DEBUG=$${DJANGO_DEBUG:-false}; \
	$(production_prepare); \
	$(supervise); \
	start $(PY) manage.py cluster --host $(HOST) --base-port $(PORT); \
	$(wait_servers)

## make lint: the static checks alone: ruff check, ruff format --check, mypy, lint-imports
lint: venv
	$(CHECKS)

format: venv
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

## make clean-data: forget the embedded default's data (SQLite file, file-system broker, collected static)
clean-data:
	rm -rf .data/opd.sqlite3 .data/opd.sqlite3-wal .data/opd.sqlite3-shm .data/celery-broker staticfiles

## make bench: the benchmark on MariaDB and Redis (seeds test_opd_bench the first time, ~2.5 min);
## prints a table and writes bench-results/latest.md and latest.json. Not part of `make test`.
bench: venv
	@.ci/install-os-packages.sh
	@urls=$$(.ci/services.sh) || exit 1; set -a; eval "$$urls"; set +a; \
	$(PY) manage.py bench $(BENCH_ARGS)
