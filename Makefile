# ScanSeal: every set-up step lives here so a fresh machine needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test lint typecheck unit bench clean install install-dev
.PHONY: install-contracts contracts bench-ledger

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The stamps re-run the install when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/python -m scanseal.demo

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install-dev
	$(BIN)/mypy

unit: install-dev
	$(BIN)/python -m pytest

test: lint typecheck unit

bench: install-dev
	$(BIN)/python bench/seal.py

# The contracts npm project (pinned solc-js and anvil). The stamp re-runs `npm ci` only when the
# lockfile changes, so a fresh clone installs it once and later runs skip it.
CONTRACTS_STAMP := contracts/node_modules/.installed

$(CONTRACTS_STAMP): contracts/package.json contracts/package-lock.json
	cd contracts && npm ci --no-audit --no-fund --loglevel=error
	touch $@

install-contracts: $(CONTRACTS_STAMP)

# Recompile ImageRegistry.sol into the artifact committed inside the Python package.
contracts: $(CONTRACTS_STAMP)
	cd contracts && node compile.js

unit: install-contracts

bench-ledger: install-dev install-contracts
	$(BIN)/python bench/ledger.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
