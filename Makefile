# The README's commands. `make demo` sets up and runs the main job; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= data/demo
# Port the demo serves the API on; `crm-score demo` checks it is free before it simulates and trains.
PORT ?= 8000

.PHONY: setup demo test lint clean bench

$(BIN)/crm-score: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/crm-score

demo: setup
	CRM_SCORING_API_KEYS=$${CRM_SCORING_API_KEYS:-demo-read:read,demo-admin:admin} $(BIN)/crm-score demo --out $(DEMO_DIR) --port $(PORT)

test: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) data models/mlflow.db models/artifacts

bench: setup
	$(BIN)/python benchmarks/bench_train.py --sizes 10000 100000
	$(BIN)/python benchmarks/bench_budget.py
	$(BIN)/python benchmarks/bench_serving.py
	$(BIN)/python benchmarks/bench_prospects.py
