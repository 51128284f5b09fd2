# Research compendium: IMR implementation in an Italian Department of Mental Health
# (Ferrara et al. 2023). `make help` lists the targets.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export JUPYTER_PREFER_ENV_PATH := 1
export PYTHONHASHSEED := 0
export MPLBACKEND := Agg

# The one kernel every notebook names (imr_workflow.runner.KERNELSPEC; a test checks they agree).
KERNEL_NAME    := python3
KERNEL_DISPLAY := Python 3 (IMR compendium)
# JupyterLab refuses to start as root (Docker, Binder, many lab servers) unless told.
LAB_ARGS := $(if $(filter 0,$(shell id -u)),--allow-root)

# Unit tests run on every core (pytest-xdist); a test file stays in one worker, so its module fixtures (whole runs
# of the compendium) are built once. nbval runs the notebooks one after another: each reads what the one before writes.
XDIST := -n auto --dist loadfile
# The real-browser test: Debian's Chromium and chromedriver (installed with apt-get when missing; root or sudo),
# selenium from the package index into .venv (not in the lock: only this test needs it).
SELENIUM_VERSION := 4.51.0
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
NBVAL_ARGS := --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-kernel-name $(KERNEL_NAME) -p no:cacheprovider

.DEFAULT_GOAL := help
.PHONY: help install reproduce test browser-test lint unit nbval notebooks synth bundles scan lab bench clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --requirement requirements.lock
	$(PY) -m pip install --quiet --no-deps --editable .
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL_NAME) --display-name "$(KERNEL_DISPLAY)" >/dev/null
	@touch $(STAMP)

install: $(STAMP) ## Create .venv with the pinned dependencies, the package and a python3 kernel

reproduce: $(STAMP) ## Run every notebook in order (papermill): data/processed, tables, figures, reports
	$(PY) -m imr_analysis run

test: $(STAMP) ## Run all tests: layers, identifier scan, unit tests, then nbval (strict) on the committed notebooks
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m imr_analysis scan data tables figures notebooks
	$(PY) -m pytest tests -p no:cacheprovider $(XDIST)
	$(PY) -m pytest notebooks $(NBVAL_ARGS)

browser-test: $(STAMP) ## Open the explorer (notebook 07) in JupyterLab in headless Chromium, change a control, check the table follows
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		$(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends chromium chromium-driver; \
	fi
	$(PY) -m pip install --quiet selenium==$(SELENIUM_VERSION)
	IMR_BROWSER_TESTS=1 $(PY) -m pytest tests/browser -p no:cacheprovider -v

lint: $(STAMP) ## Check the package's declared layers (import-linter contracts in pyproject.toml)
	$(VENV)/bin/lint-imports --no-cache

unit: $(STAMP) ## Unit tests only
	$(PY) -m pytest tests -p no:cacheprovider $(XDIST)

nbval: $(STAMP) ## nbval (strict) on the committed notebooks only
	$(PY) -m pytest notebooks $(NBVAL_ARGS)

notebooks: $(STAMP) ## Re-execute the committed notebooks in place (default parameters, volatile metadata stripped), rewrite their py:percent scripts
	$(PY) -m imr_analysis run --inplace
	$(VENV)/bin/jupytext --quiet --to py:percent notebooks/[0-9][0-9]_*.ipynb

synth: $(STAMP) ## Regenerate the synthetic raw exports in data/raw (default seed)
	$(PY) -m imr_analysis synth

# Each synthetic department: its exports (synth --departments), the notebooks writing a bundle's tables, its bundle.
# data/bundles is replaced only after every run, so that each run's colophon sees the same (clean) checkout.
bundles: $(STAMP) ## Regenerate data/bundles/<department>/ from the synthetic departments (notebook 08 pools them)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PY) -m imr_analysis synth --departments "$$tmp/raw" >/dev/null && \
	for raw in "$$tmp"/raw/*/; do \
		$(PY) -m imr_analysis run --data-dir "$$raw" --output-dir "$$tmp/out/$$(basename "$$raw")" \
			--only 01,02,03,05 --no-html || exit 1; \
	done && \
	rm -rf data/bundles && mkdir -p data/bundles && \
	for out in "$$tmp"/out/*/; do cp -r "$$out/bundle" "data/bundles/$$(basename "$$out")" || exit 1; done

scan: $(STAMP) ## Scan data, tables, figures and notebooks for direct identifiers
	$(PY) -m imr_analysis scan data tables figures notebooks

lab: $(STAMP) ## Open JupyterLab on the notebooks
	$(VENV)/bin/jupyter lab $(LAB_ARGS) notebooks

bench: $(STAMP) ## Benchmarks: time each stage at 10^3..10^6 patients
	$(PY) benchmarks/bench.py

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
