# The two commands a newcomer types:   make run   |   make test
# Both set the project up first (idempotent; a second setup takes seconds).
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: help setup run test bench clean-state
help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml infra/setup.sh
	bash infra/setup.sh

setup: ## create .venv with the pinned stack (builds mmcv once, cached per user)
	bash infra/setup.sh

run: $(STAMP) ## run the whole pipeline on the built-in dataset (dvc repro)
	$(PY) -m components.pipeline run

test: $(STAMP) ## run the test suite
	$(PY) -m pytest

bench: $(STAMP) ## run the benchmarks (figures go to benchmarks/results/)
	bash benchmarks/run_all.sh
