# ScanSeal: every set-up step lives here so a fresh machine needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test lint typecheck unit bench bench-detect clean install install-dev train

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

bench: install-dev bench-detect
	$(BIN)/python bench/seal.py

bench-detect: install-dev
	$(BIN)/python bench/detect.py

# Training has its own venv so the runtime one never gets torch. Only torch==2.13.0 exactly:
# any other spec pulls gigabytes of CUDA packages.
TRAIN_VENV := .venv-train
TRAIN_PIP  := $(TRAIN_VENV)/bin/python -m pip --disable-pip-version-check -q

$(TRAIN_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_PIP) install torch==2.13.0
	$(TRAIN_PIP) install -e ".[train]"
	touch $@

# Retrains with the fixed seed, re-exports src/scanseal/detect/model/ and rewrites the metric
# tables of docs/MODEL.md (about 45 minutes on 2 CPU cores).
train: $(TRAIN_VENV)/.installed
	$(TRAIN_VENV)/bin/python -m scanseal.detect.training
	$(TRAIN_VENV)/bin/python -m scanseal.detect.training.report

clean:
	rm -rf $(VENV) $(TRAIN_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
