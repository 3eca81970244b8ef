# synthrelease: two commands on a fresh machine.
#   make demo   installs everything, then releases the bundled Adult table (epsilon 1)
#   make test   installs everything, then lints and type-checks (make lint) and runs the
#               test suite (what CI runs: .ci/run)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: install demo lint test test-fast bench up down clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: install
	$(BIN)/synthrelease run configs/adult.yaml
	$(BIN)/synthrelease releases list --store releases
	$(BIN)/synthrelease budget show --spec configs/adult.yaml

lint: install          # ruff (lint + format) and mypy, as CI runs them
	$(BIN)/ruff check synthrelease generators validators flows tests bench
	$(BIN)/ruff format --check synthrelease generators validators flows tests bench
	MYPY=$(abspath $(BIN))/mypy scripts/typecheck.sh

test: install lint
	scripts/ensure-postgres.sh
	$(BIN)/python -m pytest -q

test-fast: install     # the unit part: no Prefect server, database or full demo release
	$(BIN)/python -m pytest -q -m "not integration"

up: install            # local Prefect server + worker + deployments (127.0.0.1:4200)
	scripts/stack.sh up

down:
	scripts/stack.sh down

bench: install         # each prints a table; bench/*.py --help for options
	$(BIN)/python bench/bench_marginal.py
	$(BIN)/python bench/bench_dpsgd.py
	$(BIN)/python bench/bench_validation.py
	$(BIN)/python bench/bench_stack.py
	$(BIN)/python bench/bench_guarantee.py

clean:
	rm -rf .synthrelease releases .prefect .pytest_cache
