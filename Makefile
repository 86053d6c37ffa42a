# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint unit e2e demo bench clean

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

demo: $(STAMP)
	@echo "make demo arrives with issue 3 (shoal up). Until then: make test, or"
	@echo "  $(BIN)/shoal control-plane --config-dir examples/split"

bench: $(STAMP)
	$(BIN)/python benchmarks/generate_bench.py
	$(BIN)/python benchmarks/convergence_bench.py

clean:
	rm -rf $(VENV) build src/*.egg-info
