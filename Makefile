# TaskQL developer commands. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
IDE_STAMP := vendor/graphiql/.installed

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("TaskQL needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## Create .venv and install the pinned dependencies

# The Node clients of tests/test_clients.py, from tests/clients/package-lock.json. Without npm
# those tests skip (and fail under CI=true), so a missing npm is only a warning here.
CLIENTS := tests/clients
CLIENTS_STAMP := $(CLIENTS)/node_modules/.installed

$(CLIENTS_STAMP): $(CLIENTS)/package-lock.json $(CLIENTS)/package.json
	@if command -v npm >/dev/null 2>&1; then \
	  echo "npm ci in $(CLIENTS)"; \
	  cd $(CLIENTS) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else \
	  echo "warning: npm not found: tests/test_clients.py will skip (Node 20+ and npm needed)" >&2; \
	fi

.PHONY: clients
clients: $(CLIENTS_STAMP) ## Install the Node clients (Apollo, urql, graphql-http) of tests/test_clients.py

# Without npm (or offline) this warns and succeeds, and the page loads GraphiQL from a CDN.
$(IDE_STAMP): taskql/ide_assets.json | $(STAMP)
	@$(BIN)/python -m taskql.ide_assets install

.PHONY: ide
ide: $(IDE_STAMP) ## Vendor GraphiQL's scripts (npm pack, hashes checked) for an offline playground

.PHONY: run
run: $(STAMP) $(IDE_STAMP) ## Migrate the embedded SQLite database and serve on http://127.0.0.1:8000/graphql
	$(BIN)/taskql serve

.PHONY: test
test: $(STAMP) $(IDE_STAMP) $(CLIENTS_STAMP) ## Run the whole test suite (PostgreSQL too when TEST_DATABASE_URL is set)
	$(BIN)/pytest $(PYTEST_ARGS)

.PHONY: lint
lint: $(STAMP) ## ruff (lint, format check), mypy --strict, import layers, schema.graphql in sync
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports
	$(BIN)/pytest -q -p no:cacheprovider tests/test_schema_file.py

.PHONY: fmt
fmt: $(STAMP) ## Format and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: hooks
hooks: $(STAMP) ## Install the git pre-commit hooks (what `make lint` runs, on each commit)
	$(BIN)/pre-commit install

.PHONY: migration
migration: $(STAMP) ## New Alembic revision from the models: make migration MESSAGE="add x"
	$(BIN)/alembic revision --autogenerate -m "$(MESSAGE)"

.PHONY: migrate
migrate: $(STAMP) ## Apply pending migrations to DATABASE_URL
	$(BIN)/taskql migrate

.PHONY: schema
schema: $(STAMP) ## Re-export schema.graphql from the code
	$(BIN)/taskql export-schema --output schema.graphql

.PHONY: bench-read
bench-read: $(STAMP) ## Read benchmark: 100k tasks, taskql serve --workers 2, wrk at 32 connections (needs wrk)
	$(BIN)/python -m bench.read $(BENCH_ARGS)

.PHONY: bench-peer
bench-peer: $(STAMP) ## Read benchmark against PostGraphile 4.14.1 on PostgreSQL, 3 rounds (needs wrk, npm)
	$(BIN)/python -m bench.read --backend postgresql --peer postgraphile $(BENCH_ARGS)

.PHONY: lock
lock: ## Re-resolve the newest allowed versions into requirements.lock
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet -e '.[dev]'
	{ echo "# Exact versions for every install (make venv). Refresh with: make lock"; \
	  .lock-venv/bin/pip freeze --exclude-editable; } > requirements.lock
	rm -rf .lock-venv

.PHONY: clean
clean: ## Remove the virtualenv, caches and vendored GraphiQL (keeps data/)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info vendor/graphiql
