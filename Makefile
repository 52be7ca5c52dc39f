# Two entry points (see README): `make demo` and `make test`. Both create the venv if needed and are idempotent.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: setup demo test lint clean

# torch is pinned to an exact release in pyproject.toml: on a CPU-only machine pip takes the local CPU
# build instead of a multi-GB CUDA build. The stamp makes reruns skip the install.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/automixer demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:
	rm -rf runs/demo-tiny runs/demo-full .pytest_cache
