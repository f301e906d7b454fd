# The two commands of the README: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= var
DICOM_PORT ?= 11112
HTTP_PORT ?= 8080
# torch is pinned to the CPU build these machines carry on disk (see README).
TORCH := torch==2.13.0
# The CPU build of torch lies on disk on these machines; pip must look there first.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

.PHONY: run test venv runtime dev system-deps viewer viewer-optional lint typecheck demo-model

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel

# Runtime only: no torch on the serving path. Reinstalled when pyproject.toml changes.
runtime: $(VENV)/.stamp-runtime
$(VENV)/.stamp-runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

dev: $(VENV)/.stamp-dev
$(VENV)/.stamp-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(FIND_LINKS) "$(TORCH)"
	$(BIN)/pip install --quiet $(FIND_LINKS) -e ".[dev]"
	touch $@ $(VENV)/.stamp-runtime

system-deps:
	bash scripts/install-system-deps.sh

# The OHIF viewer served at /viewer (npm @ohif/app, pinned and integrity-checked; docs/web.md).
# The tests need it (a missing viewer fails them); `make run` goes on without npm and says so.
viewer: system-deps
	bash scripts/install-viewer.sh
viewer-optional:
	bash scripts/install-viewer.sh --optional

run: runtime viewer-optional
	$(BIN)/triage serve --data-dir $(DATA_DIR) --dicom-port $(DICOM_PORT) --http-port $(HTTP_PORT)

# The one gate: lint, then mypy strict over the packages and tests/, then the tests.
test: system-deps viewer dev lint typecheck
	$(BIN)/python -m pytest

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: dev
	$(BIN)/mypy

demo-model: dev
	$(BIN)/triage models train-demo --out models/bundled
