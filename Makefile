# ev-assets: `make demo` runs the whole graph offline on the simulated feed; `make test` runs the tests.
# Both install what they need (uv, the locked environment, the dbt manifest) and are safe to run again.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON ?= $(shell command -v python3.11 || command -v python3)
export EV_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(abspath $(EV_DATA_DIR))/dagster_home

UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
RUN := $(UV) run --frozen

.PHONY: help setup demo ingest test ui benchmark clean

help:
	@echo "make demo       run the whole graph offline on the simulated feed (ingest + warehouse + docs)"
	@echo "make test       run the test suite"
	@echo "make ingest     run only the ingestion jobs (honours EV_SOURCE, EV_REPLAY_DIR)"
	@echo "make ui         open the Dagster UI on http://127.0.0.1:3000 with the instance the demo wrote to"
	@echo "make benchmark  print the warehouse benchmark figures"

# uv from PyPI into a private venv when the machine has none
$(CURDIR)/.tools/bin/uv:
	python3 -m venv $(CURDIR)/.tools && $(CURDIR)/.tools/bin/pip install --quiet uv

setup: $(UV)
	$(UV) sync --frozen
	@mkdir -p "$(DAGSTER_HOME)/.nux"
	@cp dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"
	@echo "seen: 1" > "$(DAGSTER_HOME)/.nux/nux.yaml"
	@if [ -f dbt_project/dbt_project.yml ]; then cd dbt_project && $(RUN) dbt parse --quiet --profiles-dir . ; fi

demo: setup
	$(RUN) python -m ev_assets.cli demo

ingest: setup
	$(RUN) python -m ev_assets.cli ingest

test: setup
	$(RUN) pytest

ui: setup
	$(RUN) dagster dev -w workspace.yaml --host 127.0.0.1 --port 3000

benchmark: setup
	$(RUN) python benchmarks/warehouse_benchmark.py

clean:
	rm -rf "$(EV_DATA_DIR)" dbt_project/target dbt_project/logs
