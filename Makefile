# batchlab: `make lab` opens the notebooks, `make test` runs every test. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.batchlab-installed
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
NB ?= notebooks/*.ipynb
# PyTorch: TORCH=auto (default) takes the CPU build on a Linux machine without an NVIDIA GPU (about
# 0.2 GB to download, from PyTorch's CPU wheel index) and the default build elsewhere (on Linux the
# CUDA build, about 4 GB with its NVIDIA libraries); TORCH=cpu or TORCH=cuda forces one. A torch at
# the pinned version that is already installed, or whose wheel pip finds locally (--no-index), is used
# as it is: the index is only asked when nothing local fits.
TORCH ?= auto
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
TORCH_PIN := $(shell sed -n 's/^torch==//p' requirements.txt)
UNAME ?= $(shell uname -s)
NVIDIA ?= $(shell { command -v nvidia-smi || test -e /proc/driver/nvidia; } >/dev/null 2>&1 && echo yes)
TORCH_BUILD = $(if $(filter auto,$(TORCH)),$(if $(and $(filter Linux,$(UNAME)),$(if $(NVIDIA),,no)),cpu,default),$(TORCH))
TORCH_INDEX = $(if $(filter cpu,$(TORCH_BUILD)),--extra-index-url $(TORCH_CPU_INDEX))
SITE ?= build/site
NBVAL := $(PY) -m pytest --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
	--nbval-cell-timeout 240

.PHONY: setup lab test test-fast test-unit test-install test-notebooks test-browser lint execute app browser clean \
	site tidy

setup: $(STAMP)

# Re-installs only when the pins or the package metadata change; otherwise this is instant.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "PyTorch $(TORCH_PIN): $(TORCH_BUILD) build (TORCH=$(TORCH); override with TORCH=cpu or TORCH=cuda)"
	$(if $(filter cuda,$(TORCH)),,$(PY) -m pip install --quiet --no-deps --no-index torch==$(TORCH_PIN) 2>/dev/null || )$(PY) -m pip install --quiet torch==$(TORCH_PIN) $(TORCH_INDEX)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@mkdir -p $(VENV)/share/jupyter/lab/settings
	@cp tests/browser/lab_overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json 2>/dev/null || true
	@touch $@

# JupyterLab on 127.0.0.1, opening the landing notebook.
lab: setup
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --ServerApp.root_dir=notebooks \
	  --LabApp.default_url=/lab/tree/00_start_here.ipynb $(ALLOW_ROOT)

# The training simulator as a stand-alone app (Voilà) on http://127.0.0.1:8866: apps/simulator.ipynb, a page
# with only the app. A kernel idle for 10 minutes (a closed tab) is shut down. Keep this command line and
# the one in tests/browser/servers.py (voila) the same.
app: setup
	JUPYTER_PATH=apps/share/jupyter $(VENV)/bin/voila apps/simulator.ipynb --template=batchlab-app \
	  --no-browser --Voila.ip=127.0.0.1 --port=8866 --MappingKernelManager.cull_idle_timeout=600 --MappingKernelManager.cull_interval=60

lint: setup
	$(VENV)/bin/ruff check src tests notebooks benchmarks tools apps

test-unit: setup
	$(PY) -m pytest tests -m "not browser and not install" -q

# The README's pip route in a fresh venv: pip install -e ".[lab]", then jupyter lab, voila, the slides
# and batchlab are there at the pins (about a minute with pip's cache warm).
test-install: setup
	$(PY) -m pytest tests -m install -q

test-notebooks: setup
	$(NBVAL) $(NB) -q

# Debian's Chromium for the browser tests (Playwright's own browser download does not work here).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "Install Chromium (e.g. sudo apt-get install chromium) for the browser tests"; exit 1; fi; }

# Every notebook in a real JupyterLab (and the simulator in Voilà) in headless Chromium; the
# screenshots land in tests/browser/screenshots/. A few minutes; --durations shows where they go.
test-browser: setup browser
	$(PY) -m pytest tests -m browser -q --durations=5 --timeout=900

test-fast: lint test-unit test-notebooks

# The install test waits mostly on pip (downloads, unpacking torch): it runs beside the notebook tests.
test: lint test-unit
	$(MAKE) --no-print-directory -j2 --output-sync=target test-notebooks test-install
	$(MAKE) --no-print-directory test-browser

# Regenerate the stored outputs of the notebooks: one fresh top-to-bottom run each, seeded.
execute: setup
	for nb in $(NB); do \
	  $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=600 --NotebookClient.record_timing=False \
	    --NotebookClient.store_widget_state=False "$$nb" || exit 1; \
	done

# A static HTML site of every notebook from its stored outputs (nothing runs), math typeset offline:
# open build/site/index.html. binder-repo in pyproject.toml ([tool.batchlab]) adds "run it on Binder" links.
site: setup
	$(PY) tools/build_site.py --out $(SITE) notebooks/*.ipynb

# Slide metadata without the explicit "-" and the navigation lines: run after adding a notebook.
tidy: setup
	$(PY) tools/tidy_notebooks.py notebooks/*.ipynb

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info tests/browser/screenshots

# Data parallelism from a terminal: W processes (gloo over 127.0.0.1) train the digits MLP with DDP and
# rank 0 prints the per-rank counts and the weight agreement (notebook 08 runs the same function).
.PHONY: ddp
W ?= 2
ddp: setup
	$(VENV)/bin/torchrun --standalone --nproc-per-node $(W) -m batchlab.distributed
