# The README's commands. `make run` starts the stack; `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test bench lint format install system-deps test-deps clean

# `make run PORT=8081` serves the shim on another port.
PORT ?= 8080

run: install system-deps
	DISPATCHYARD_DEV_MODE=$${DISPATCHYARD_DEV_MODE:-1} $(BIN)/dispatchyard run --port $(PORT)

test: install system-deps test-deps
	$(BIN)/pytest $(PYTEST_ARGS)

# Every benchmark beside its peer, then docs/benchmarks.md and its plots. BENCH_QUICK=1 for a
# short run that checks the pipeline (its figures are not comparable with a full run's).
bench: install system-deps
	@command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk
	$(BIN)/python -c 'import matplotlib' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench --report

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# redis-server and tmux from Debian's packages when they are missing.
system-deps:
	@command -v redis-server >/dev/null && command -v tmux >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server tmux; }
	@# Debian starts a system redis on install; we never use it (tests start a private one).

# Debian's chromium for the dashboard's browser tests (Playwright drives it; it never
# downloads a browser of its own), and Debian's prometheus for promtool, which checks and
# unit-tests deploy/prometheus/alerts.yml.
test-deps:
	@command -v chromium >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }
	@command -v promtool >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus; }

clean:
	rm -rf $(VENV) var .pytest_cache
