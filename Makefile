# Two commands: `make demo` (the main job on the embedded default) and `make test`.
# Both bootstrap .venv; `make test` also installs PostgreSQL and Redis binaries when run as root.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint services bench helm image clean cluster cluster-build cluster-down

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hemostat demo

services:
	scripts/install-services.sh

lint: $(STAMP)
	$(BIN)/ruff check agent probes actions policies tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: $(STAMP) services cluster-build lint
	$(BIN)/python -m pytest -q

bench: $(STAMP) services
	$(BIN)/python -m bench

helm:
	scripts/fetch-helm.sh

# A real control plane (kube-apiserver, controller-manager, scheduler, etcd, kwok nodes) built from
# Go modules into .cache/kube-<version>/bin; see docs/testing-kubernetes.md.
cluster-build:
	scripts/build-cluster.sh

cluster:
	scripts/cluster.sh up

cluster-down:
	scripts/cluster.sh down

image: $(STAMP) services
	scripts/build-image.sh

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache
