# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
# Both create the virtual environment in .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-quick test-all lint fmt docs bench bench-smoke clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/smm demo

# Tests run on every core (pytest-xdist): compilation, which dominates them, is single-threaded.
# An idle worker takes queued tests from a busy one; the heavy tests are queued first (conftest.py).
PYTEST_WORKERS ?= auto
XDIST := -n $(PYTEST_WORKERS) --dist worksteal

# The slowest tests are listed at the end (--durations), to keep the suite's time in view.
test: install
	$(BIN)/python -m pytest -q -m "not slow" $(XDIST) --durations=25

# The developer loop: every unit and property test, without the heavy
# integration tests (notebooks, demo, README and docs examples, benchmark smoke runs).
test-quick: install
	$(BIN)/python -m pytest -q -m "not slow and not integration" $(XDIST)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The documentation site (Sphinx, docs/), warnings as errors; open docs/_build/html/index.html.
$(BIN)/.docs-installed: $(BIN)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $@

docs: $(BIN)/.docs-installed
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

test-all: install
	$(BIN)/python -m pytest -q $(XDIST)

bench: install
	$(BIN)/python benchmarks/run_all.py

bench-smoke: install
	$(BIN)/python benchmarks/run_all.py --smoke

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache docs/_build docs/api/generated docs/tutorials/notebooks
