# Two commands a new user needs: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The dashboard's charting library (Plotly.js basic, cartesian and strict bundles), pinned by
# service/vendor/package-lock.json.
DASHBOARD_JS := service/vendor/node_modules/.package-lock.json
HOST ?= 127.0.0.1
PORT ?= 8000
# pytest-xdist processes for `make test`: most tests wait on servers, workers and browsers,
# so two processes fit a 2-core machine; each starts its own PostgreSQL cluster.
TEST_PROCESSES ?= 2

.PHONY: run test install system-deps lint bench clean

# torch==2.13.0 first (constraints.txt): an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[trainer,keras,dev]'
	touch $(STAMP)

$(DASHBOARD_JS): service/vendor/package.json service/vendor/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix service/vendor --no-audit --no-fund --loglevel=error; \
	else \
		echo "npm not found: the dashboard serves the full Plotly.js bundle (slower first load, no parallel coordinates or WebGL charts)"; \
	fi

install: $(STAMP) $(DASHBOARD_JS)

## Install everything, then `momentum up --demo`: SQLite in ./data, migrations, the service on
## http://$(HOST):$(PORT), two local workers, and a demo momentum sweep
run: install
	$(BIN)/momentum up --demo --host $(HOST) --port $(PORT) --data-dir ./data

system-deps:
	@bash scripts/system-deps.sh

## Install everything (Debian packages too, as root) and run lint plus the whole test suite
test: system-deps install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist loadfile

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
