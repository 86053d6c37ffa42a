# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint unit e2e demo bench bench-scale bench-kube clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -q -p no:cacheprovider

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

# DEMO_ARGS lets tests pick free ports: make demo DEMO_ARGS="--xds-port 0 ..."
DEMO_ARGS ?=
# NETNS=1: every replica a pod with transparent capture (root; see README "shoal up --netns")
NETNS ?=
demo: $(STAMP)
	$(BIN)/shoal up examples/demo --secure $(if $(NETNS),--netns) $(DEMO_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/generate_bench.py
	$(BIN)/python benchmarks/convergence_bench.py
	$(BIN)/python benchmarks/parse_bench.py

# N simulated sidecars against the control plane, beside the floor; SCALE_ARGS="--full" etc.
SCALE_ARGS ?= --quick
bench-scale: $(STAMP)
	$(BIN)/python benchmarks/scale_bench.py $(SCALE_ARGS)

# 1,000 Services / 10,000 pods in the fake API server, 1,000 simulated sidecars, beside the
# floor and the same change from files; KUBE_SCALE_ARGS="--scoped", "--quick" etc.
KUBE_SCALE_ARGS ?=
bench-kube: $(STAMP)
	$(BIN)/python benchmarks/kube_scale_bench.py $(KUBE_SCALE_ARGS)

clean:
	rm -rf $(VENV) build src/*.egg-info
