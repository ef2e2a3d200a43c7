# The README's commands. `make run` starts the stack; `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test bench lint format install system-deps clean

run: install system-deps
	DISPATCHYARD_DEV_MODE=$${DISPATCHYARD_DEV_MODE:-1} $(BIN)/dispatchyard run

test: install system-deps
	$(BIN)/pytest $(PYTEST_ARGS)

bench: install system-deps
	@command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk
	$(BIN)/python -m bench

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

clean:
	rm -rf $(VENV) var .pytest_cache
