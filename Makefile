# Two entry points (see README): `make demo` and `make test`. Both create the venv if needed and are idempotent.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: setup browser demo test lint clean

# torch is pinned to an exact release in pyproject.toml: on a CPU-only machine pip takes the local CPU
# build instead of a multi-GB CUDA build. The stamp makes reruns skip the install.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/automixer demo

# The report test renders the HTML report in headless Chromium (Debian's `chromium` package): installed here when
# missing and we are root (as in CI); elsewhere the test is skipped with a note (it fails under CI=true instead).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the report test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium not found and not root; the headless-browser report test will be skipped"; fi; }

test: setup browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:
	rm -rf runs/demo-tiny runs/demo-full .pytest_cache
