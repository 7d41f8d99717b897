# Fresh-machine entry points. Each target creates the virtual environment it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0

.PHONY: demo test test-all install report clean-venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch pinned first and on its own: a bare `torch` requirement can pull a multi-GB CUDA build.
	# On a GPU machine, install the CUDA build of your choice first and set TORCH_VERSION to it.
	$(PY) -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(PY) -m pip install --quiet -e ".[test]" "torch==$(TORCH_VERSION)"
	touch $@

install: $(VENV)/.installed

## Train MIAN on the embedded synthetic dataset and log it to MLflow (mlflow.db at the project root).
demo: install
	$(PY) -m benchmark

## The default test suite (slow tests excluded).
test: install
	$(PY) -m pytest

## Every test, the slow ones included.
test-all: install
	$(PY) -m pytest -m "slow or not slow"

report: install
	$(PY) -m benchmark.report

clean-venv:
	rm -rf $(VENV)
