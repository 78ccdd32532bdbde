# pinsights — developer entry points. `make install` is idempotent: it only
# reinstalls when pyproject.toml is newer than the virtualenv's stamp.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: install test test-fast demo lint format bench bench-serve bench-dashboard typecheck clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The suite on TEST_WORKERS pytest-xdist worker processes (tests/parallel.py says what runs together
# and what first); TEST_WORKERS=0: one process. Three on a 2-core machine: the tests wait (for
# subprocesses, JVMs, servers, fsync) a third of the time, and a third worker fills it. The same
# fresh clone of 4128d87, quiet machine, 2026-12-07: 16 min 7 s on two workers, 14 min 25 s on
# three (948 passed each; 1,232 and 1,195 CPU s). An earlier pair at unequal loads had gone the
# other way (16:20 on two, 20:40 on three).
TEST_WORKERS ?= 3
PARALLEL := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadscope)

test: install
	$(BIN)/python -m pytest -q $(PARALLEL)

# The suite without the `slow` tests (a Spark standalone cluster, the JVM class archive): for a
# quick run while developing. CI runs `make test`, which runs them too.
test-fast: install
	$(BIN)/python -m pytest -q $(PARALLEL) -m "not slow"

demo: install
	$(BIN)/pinsights demo --port $(PORT)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: install
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: install
	$(BIN)/python benchmarks/build.py

bench-serve: install
	@command -v wrk >/dev/null || { echo "bench-serve needs wrk: apt-get install -y wrk"; exit 1; }
	$(BIN)/python benchmarks/serve.py

bench-dashboard: install
	$(BIN)/python benchmarks/dashboard.py

clean:
	rm -rf $(VENV) pinsights-store .pytest_cache .mypy_cache .ruff_cache
