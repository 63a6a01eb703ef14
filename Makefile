# Two commands for a new user: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false

.PHONY: run test install lint clean browser postgresql

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

# --no-compile: pip would byte-compile every installed module (half of the install's minute);
# Python compiles the modules a run imports instead, once, and keeps them (the environment's
# PYTHONDONTWRITEBYTECODE, where set, would make every process compile them again).
unexport PYTHONDONTWRITEBYTECODE

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/kedro run

# The suite's test files run in TEST_WORKERS processes (pytest-xdist), each file whole in one
# of them (--dist loadfile): a module's fixtures (a tiny project's first run, a Dask cluster)
# are made once, and the session's servers once per process that uses them. Two: CI's cores.
TEST_WORKERS ?= 2

test: $(STAMP) browser postgresql
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# Chromium and its driver from the distribution's packages, for the browser tests (which
# skip, saying why, where neither this nor a system install provided them).
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium and chromium-driver (apt-get) for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends chromium chromium-driver >/dev/null) \
	      || echo "could not install Chromium: the browser tests will be skipped"; \
	  else echo "no Chromium (apt-get install chromium chromium-driver): browser tests skip"; fi; \
	fi

# PostgreSQL from the distribution's packages, for the tracking-server tests (a PostgreSQL
# server and `mlflow server` on loopback; they skip, saying why, where it is missing).
postgresql:
	@if ! command -v pg_ctl >/dev/null && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing postgresql (apt-get) for the tracking-server tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends postgresql >/dev/null) \
	      || echo "could not install PostgreSQL: the tracking-server tests will be skipped"; \
	  else echo "no PostgreSQL (apt-get install postgresql): tracking-server tests skip"; fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf mlruns/* data/0*/* .pytest_cache
