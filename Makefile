# ssl_geom — the commands users and CI run. `make test` and `make demo` set up
# whatever is missing first, and are quick when it is already there.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_DIR := /usr/share/datasets/fashion-mnist
PYTEST_WORKERS ?= 2
# Reproduction budget: `local` (2 CPU cores), `gpu` (one GPU; time per table: an estimate, docs/reproduce.md), `paper` (the papers' settings, GPU cluster).
PROFILE ?= local
# Extra arguments for python -m ssl_geom.reproduce, e.g. REPRO_ARGS="--launcher submitit --partition gpu".
REPRO_ARGS ?=

.PHONY: setup data test test-slow test-all lint format demo notebooks clean-venv \
	reproduce-table1 reproduce-table2 reproduce-care reproduce-care-lambda reproduce-rank

setup: $(STAMP) data

# Re-install only when the package metadata changes.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Fashion-MNIST (real data, MNIST format) from Debian's offline package, when we
# may install it (root with apt). Otherwise it is skipped: tests that need it skip.
data:
	@if [ -d $(FASHION_DIR) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null; } || \
		echo "note: could not install dataset-fashion-mnist; tests that need it will skip"; \
	else echo "note: $(FASHION_DIR) missing; run 'sudo apt-get install dataset-fashion-mnist'"; fi

test: setup
	$(PY) -m pytest -q -m "not slow" -n $(PYTEST_WORKERS) --dist loadfile

# The slow set is mostly one file of fast_dev_runs, so spread single tests, not files. The
# heavy ones (about 10 GB each, measured 10.3 GB peak RSS) run afterwards, each in a process
# of its own: two side by side exceed this machine's 24 GB, and one process running them in
# turn keeps enough of each to be killed at the ninth.
test-slow: setup
	$(PY) -m pytest -q -m "slow and not heavy" -n $(PYTEST_WORKERS) --dist load
	@$(PY) -m pytest -q -m heavy --collect-only -p no:xdist | grep '::' | while read -r t; do \
		echo "$$t"; $(PY) -m pytest -q -p no:xdist "$$t" || exit 1; done

test-all: test test-slow

# ruff and mypy are pinned in the dev extra, so these checks give the same answer everywhere.
lint: setup
	$(PY) -m ruff check ssl_geom tests benchmarks notebooks
	$(PY) -m ruff format --check ssl_geom tests benchmarks notebooks
	$(PY) -m mypy ssl_geom notebooks/runner.py

format: setup
	$(PY) -m ruff check --fix ssl_geom tests benchmarks notebooks
	$(PY) -m ruff format ssl_geom tests benchmarks notebooks

demo: setup
	$(PY) -m ssl_geom.demo

# Execute the notebooks in place on their own parameters (real Fashion-MNIST), so they are
# committed with their outputs; training logs go to runs/notebooks.
notebooks: setup
	$(PY) notebooks/runner.py $(wildcard notebooks/*.ipynb)

reproduce-table1: setup
	$(PY) -m ssl_geom.reproduce table1 --profile $(PROFILE) $(REPRO_ARGS)

reproduce-table2: setup
	$(PY) -m ssl_geom.reproduce table2 --profile $(PROFILE) $(REPRO_ARGS)

reproduce-care: setup
	$(PY) -m ssl_geom.reproduce care --profile $(PROFILE) $(REPRO_ARGS)

reproduce-care-lambda: setup
	$(PY) -m ssl_geom.reproduce care_lambda --profile $(PROFILE) $(REPRO_ARGS)

reproduce-rank: setup
	$(PY) -m ssl_geom.reproduce rank --profile $(PROFILE) $(REPRO_ARGS)

clean-venv:
	rm -rf $(VENV)
