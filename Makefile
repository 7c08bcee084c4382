# The two commands a newcomer types:   make run   |   make test
# Both set the project up first (idempotent; a second setup takes seconds).
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: help setup run test bench servers-up servers-down mlflow-up servers-status
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

bench: $(STAMP) ## list the benchmark scripts (each has --help; figures in benchmarks/README.md)
	@echo "see benchmarks/README.md: each script has --help"; ls benchmarks/*.py

servers-up: $(STAMP) ## Prefect server + work pool + deployments + worker on 127.0.0.1 (prints the UI URL)
	bash infra/scripts/servers.sh up

servers-down: ## stop what servers-up / mlflow-up started (SIGTERM by PID)
	bash infra/scripts/servers.sh down

mlflow-up: $(STAMP) ## MLflow UI/tracking server on 127.0.0.1:5000 over mlruns/mlflow.db
	bash infra/scripts/servers.sh mlflow-start

servers-status: ## which local servers are running
	bash infra/scripts/servers.sh status
