# The README's two commands: `make demo` (the main job) and `make test` (lint, types, tests).
# Both create the virtualenv and install on first use; nothing else must be pre-installed.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench faults clean venv lock system-deps

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[pipeline,dev]'
	@touch $(STAMP)

venv: $(STAMP)

# The demo signs with the development keys: it runs in development mode, and says so.
demo: $(STAMP)
	$(BIN)/tuyen --dev demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy producers streams sinks schemas deploy tests benchmarks

system-deps:
	@deploy/bin/ensure-system-deps

# The tests run on TEST_WORKERS pytest-xdist workers (0: in this process, one at a time); each
# test file stays on one worker (tests/conftest.py).
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadfile

test: system-deps lint typecheck
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(XDIST) $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# Re-pin constraints.txt from what resolves today (run deliberately, then commit).
lock:
	rm -rf /tmp/tuyen-lock && $(PYTHON) -m venv /tmp/tuyen-lock
	/tmp/tuyen-lock/bin/pip install --quiet '.[pipeline,dev]'
	/tmp/tuyen-lock/bin/pip freeze --exclude tuyen > constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
