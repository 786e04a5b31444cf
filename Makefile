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
# Parallel test workers (pytest-xdist): one per core.
JOBS ?= 2
# Notebooks that train a model: the ones whose numbers could move on another CPU.
NB_TRAINING ?= $(filter-out notebooks/00_%,$(wildcard notebooks/*.ipynb))
# Two emulated CPUs (see test-emulated); each setting is one word list passed to `env`.
EMULATED_CPUS := "ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE" "ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2"

.PHONY: setup lab test test-fast test-unit test-install test-notebooks test-emulated test-nbval test-browser lint \
	execute app browser clean site tidy critical

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

# The training simulator as a stand-alone app (Voilà) on http://127.0.0.1:8866 with a random token (open the
# URL it prints, as with make lab): apps/simulator.ipynb, a page with only the app. A kernel idle for 10 minutes (a closed tab) is shut down. Keep this command line and
# the one in tests/browser/servers.py (voila) the same.
app: setup
	JUPYTER_PATH=apps/share/jupyter $(VENV)/bin/voila apps/simulator.ipynb --template=batchlab-app \
	  --no-browser --Voila.ip=127.0.0.1 --port=8866 --token \
	  --MappingKernelManager.cull_idle_timeout=600 --MappingKernelManager.cull_interval=60

# ruff, then the layers of the package (the contract in pyproject.toml: no import runs upwards).
lint: setup
	$(VENV)/bin/ruff check src tests notebooks benchmarks tools apps
	$(VENV)/bin/lint-imports

# The unit and property tests, spread over the cores (pytest-xdist; worksteal: a few tests run whole
# notebooks, so an idle core takes queued tests from the busy one).
test-unit: setup
	$(PY) -m pytest tests -m "not browser and not install" -q -n $(JOBS) --dist worksteal

# The README's pip route in a fresh venv: pip install -e ".[lab]", then jupyter lab, voila, the slides
# and batchlab are there at the pins (a few minutes, mostly pip; faster with pip's cache warm).
test-install: setup
	$(PY) -m pytest tests -m install -q

# nbval: every notebook runs top to bottom and its outputs must equal the stored ones. One notebook per
# worker (--dist loadfile): a notebook's cells share one kernel.
test-notebooks: setup
	$(NBVAL) $(NB) -q -n $(JOBS) --dist loadfile

# The same, under other CPUs' arithmetic: each setting picks other vectorised kernels in PyTorch
# (ATEN_CPU_CAPABILITY) and another BLAS code path in MKL (MKL_CBWR), so the weights' last bits differ as
# they do on another machine. The stored outputs must still match: a number printed more precisely than
# its cross-machine variation fails here. Only the notebooks that train (00 trains nothing).
test-emulated: setup
	@for setting in $(EMULATED_CPUS); do \
	  echo "nbval with $$setting"; \
	  env $$setting $(NBVAL) $(NB_TRAINING) -q -n $(JOBS) --dist loadfile || exit 1; \
	done

# Debian's Chromium for the browser tests (Playwright's own browser download does not work here).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "Install Chromium (e.g. sudo apt-get install chromium) for the browser tests"; exit 1; fi; }

# Every notebook in a real JupyterLab, then as slides (and the simulator in Voilà, the static site) in
# headless Chromium; the screenshots land in tests/browser/screenshots/. A few minutes; --durations
# shows where they go. Each notebook runs once; --dist worksteal keeps both cores busy to the end
# (the notebooks take 10-60 s each).
test-browser: setup browser
	$(PY) -m pytest tests -m browser -q --durations=5 --timeout=900 -n $(JOBS) --dist worksteal

# The edit-test loop: lint, unit tests and nbval (a few minutes).
test-fast: lint test-unit test-notebooks

# Everything: the above, nbval under two emulated CPUs, the install test (it waits mostly on pip, so it
# runs beside the notebook tests) and the browser tests.
test: lint test-unit
	$(MAKE) --no-print-directory -j2 --output-sync=target test-nbval test-install
	$(MAKE) --no-print-directory test-browser

# nbval as it is, then under the emulated CPUs (one after the other: each uses every core).
test-nbval:
	$(MAKE) --no-print-directory test-notebooks
	$(MAKE) --no-print-directory test-emulated

# Regenerate the stored outputs of the notebooks: one fresh top-to-bottom run each, seeded.
execute: setup
	for nb in $(NB); do \
	  $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=600 --NotebookClient.record_timing=False \
	    --NotebookClient.store_widget_state=False "$$nb" || exit 1; \
	done

# Notebook 07's full critical-batch-size measurement (5 tuning and 10 held-out seeds, about 10 minutes on
# one core): prints its numbers and rewrites src/batchlab/results/critical_batch.json, which notebooks 07 and 08 read.
critical: setup
	$(PY) benchmarks/critical_batch.py

# A static HTML site of every notebook from its stored outputs (nothing runs), math typeset offline:
# open build/site/index.html. binder-repo in pyproject.toml ([tool.batchlab]) adds "run it on Binder" links.
site: setup
	$(PY) tools/build_site.py --out $(SITE) notebooks/*.ipynb

# Slide metadata without the explicit "-" and the navigation lines: run after adding a notebook.
tidy: setup
	$(PY) tools/tidy_notebooks.py notebooks/*.ipynb

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info tests/browser/screenshots

# Data parallelism from a terminal: the launcher starts W processes (gloo over 127.0.0.1 only) that train
# the digits MLP with DDP, then prints the per-rank counts and the weight agreement (notebook 08 runs the
# same function). W is capped at the CPU cores: W=4 DDP_FLAGS=--oversubscribe starts more.
.PHONY: ddp
W ?= 2
DDP_FLAGS ?=
ddp: setup
	$(PY) -m batchlab.distributed --world-size $(W) $(DDP_FLAGS)
