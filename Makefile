# celltext: the two commands of the README's quick start are `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format setup clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/celltext demo

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest --cov=celltext --cov-report=term:skip-covered $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check celltext tests benchmarks
	$(BIN)/ruff format --check celltext tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format celltext tests benchmarks
	$(BIN)/ruff check --fix celltext tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .coverage
