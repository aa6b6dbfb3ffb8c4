# ev-assets: `make demo` runs the whole graph offline on the simulated feed; `make test` runs the tests.
# Both install what they need (uv, the locked environment, the dbt manifest) and are safe to run again.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never
# The interpreter itself, not a launcher on PATH such as a pyenv shim: uv recreates a venv whose recorded
# interpreter differs from the one it is given, which would rebuild .venv on every `make` target.
PYTHON_BIN := $(shell for p in python3.11 python3; do command -v $$p >/dev/null && $$p -c 'import sys; print(sys.executable)' && break; done)
export UV_PYTHON ?= $(PYTHON_BIN)
export EV_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(abspath $(EV_DATA_DIR))/dagster_home

UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
RUN := $(UV) run --frozen

.PHONY: help setup browser spark servers demo ingest rebuild-raw warehouse-spark test ui docs mlflow serve dashboard live soak benchmark benchmark-spark clean

help:
	@echo "make demo       run the whole graph offline on the simulated feed (ingest + warehouse + docs)"
	@echo "make test       run the test suite"
	@echo "make ingest     run only the ingestion jobs (honours EV_SOURCE, EV_REPLAY_DIR)"
	@echo "make rebuild-raw  rebuild the session and telemetry tables from the raw store alone"
	@echo "make warehouse-spark  build the warehouse (the dbt project) on Spark instead of DuckDB, for the data ingested"
	@echo "make ui         open the Dagster UI on http://127.0.0.1:3000 with the instance the demo wrote to"
	@echo "make docs       serve the dbt docs site the demo wrote on http://127.0.0.1:8080"
	@echo "make mlflow     open the MLflow UI (runs, registered models, champions) on http://127.0.0.1:5000"
	@echo "make serve      start the prediction and KPI service on http://127.0.0.1:8000 (docs at /docs)"
	@echo "make dashboard  open the operator dashboard on http://127.0.0.1:8501"
	@echo "make live       the live path: broker, feed, consumer, Dagster daemon, service and dashboard (Ctrl-C stops all)"
	@echo "make soak       30 simulated days of scheduled operation, audited day by day (data/soak)"
	@echo "make benchmark  print the warehouse benchmark figures"
	@echo "make servers    install Debian's redis-server and postgresql (the scale-out tests start them)"

# uv from PyPI into a private venv when the machine has none. Two targets started at once on a fresh clone would
# both create it: the first takes the lock (flock, where the machine has it) and the second finds uv installed.
LOCKED := $(if $(shell command -v flock 2>/dev/null),flock $(CURDIR)/.tools/.install.lock,)
$(CURDIR)/.tools/bin/uv:
	@mkdir -p $(CURDIR)/.tools
	@$(LOCKED) sh -c 'test -x $(CURDIR)/.tools/bin/uv || { python3 -m venv $(CURDIR)/.tools && $(CURDIR)/.tools/bin/pip install --quiet uv; }'

DBT_MANIFEST := dbt_project/target/manifest.json
DBT_SOURCES := $(shell find dbt_project -path dbt_project/target -prune -o -type f \( -name '*.sql' -o -name '*.yml' -o -name '*.md' \) -print)

# The `spark` extra (dbt-spark, pyspark) once installed (`make spark`) stays: setup syncs with it then.
SPARK_EXTRA = $(if $(wildcard $(CURDIR)/.venv/lib/python*/site-packages/pyspark),--extra spark)
# The Dagster instance: SQLite under DAGSTER_HOME, or PostgreSQL when EV_DAGSTER_PG_URL names a database.
INSTANCE_YAML := $(if $(EV_DAGSTER_PG_URL),ev_assets/deploy/dagster-postgres.yaml,dagster.yaml)

# Safe to run again and at the same time as another target: a venv that matches uv.lock is left alone.
# The libraries are compiled to bytecode once, here (~50 s on a fresh clone; UV_COMPILE_BYTECODE=0 leaves it out): uv
# does not by default, and where PYTHONDONTWRITEBYTECODE is set every Python process would compile what it imports
# again (importing the definitions: 9.6 s, 4.5 s compiled).
UV_COMPILE_BYTECODE ?= 1
setup: $(UV)
	@UV_COMPILE_BYTECODE=$(UV_COMPILE_BYTECODE) $(UV) sync --frozen --quiet $(SPARK_EXTRA)
	@mkdir -p "$(DAGSTER_HOME)/.nux"
	@cp $(INSTANCE_YAML) "$(DAGSTER_HOME)/.dagster.yaml.$$$$" && mv -f "$(DAGSTER_HOME)/.dagster.yaml.$$$$" "$(DAGSTER_HOME)/dagster.yaml"
	@echo "seen: 1" > "$(DAGSTER_HOME)/.nux/nux.yaml"
	@$(MAKE) --silent --no-print-directory $(DBT_MANIFEST)

# dagster-dbt loads the project from its manifest: parsed again only when a dbt file changed.
$(DBT_MANIFEST): $(DBT_SOURCES)
	@mkdir -p $(CURDIR)/.tools
	cd dbt_project && $(LOCKED) $(RUN) dbt parse --quiet --profiles-dir .

demo: setup
	@$(RUN) python -m ev_assets.cli demo $(ARGS)

ingest: setup
	@$(RUN) python -m ev_assets.cli ingest $(ARGS)

# The session and telemetry tables from the raw store alone (they hold everything ever pulled): no pull.
rebuild-raw: setup
	@$(RUN) python -m ev_assets.cli rebuild-raw $(ARGS)

# The UI tests look at pages in headless Chromium: Debian's package, installed when missing.
browser:
	@command -v chromium >/dev/null || { echo "installing Debian's chromium for the UI tests"; \
		$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq chromium >/dev/null; }

# The dbt project's second engine (README "Warehouse engines"): Debian's Java 17 and the `spark` extra of
# pyproject.toml (dbt-spark with pyspark, ~560 MB), installed when missing. `make demo` needs neither.
spark: setup
	@command -v java >/dev/null || { echo "installing Debian's openjdk-17-jre-headless for Spark"; \
		$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }
	@ls -d $(CURDIR)/.venv/lib/python*/site-packages/pyspark >/dev/null 2>&1 || { \
		echo "installing the spark extra (dbt-spark, pyspark)"; UV_COMPILE_BYTECODE=$(UV_COMPILE_BYTECODE) $(LOCKED) $(UV) sync --frozen --quiet --extra spark; }

# The scale-out tests start Debian's redis-server (the Celery broker) and postgresql (the Dagster instance) on free
# ports: installed when missing.
servers:
	@{ command -v redis-server >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || { \
		echo "installing Debian's redis-server and postgresql for the scale-out tests"; \
		$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq redis-server postgresql >/dev/null; }

# The tests on pytest-xdist workers, one per core (TEST_WORKERS=0: in one process). The groups and their order are
# set in ev_assets_tests/fixtures/workers.py: the tests sharing a module or a data root run on one worker, the slow
# first.
# Their temporary folders (data roots, Dagster instances, warehouses; 1-2 GB) are on tmpfs when /dev/shm has 4 GB
# free (TEST_TMP=/other/folder puts them elsewhere): SQLite and DuckDB wait for the disk at every commit, and the demo
# takes 91 s on disk, 63 s on tmpfs. Removed after a run that passed or was stopped (Ctrl-C: pytest's exit 2, also a
# collection error's); kept, and named, after one that failed. Their `tmp` is open to all, as /tmp is: as root, the
# scale-out tests run PostgreSQL as the `postgres` user in a folder there.
TEST_WORKERS ?= auto
TEST_TMP ?= $(shell [ "$$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 {print $$4}')" -ge 4194304 ] 2>/dev/null && echo /dev/shm)
test: setup browser spark servers
	@base=$$(mktemp -d "$(or $(TEST_TMP),$${TMPDIR:-/tmp})/ev-assets-tests.XXXXXX") && chmod 711 "$$base" && mkdir -m 1777 "$$base/tmp" && \
	echo "temporary folders: $$base" && \
	TMPDIR="$$base/tmp" $(RUN) pytest -n $(TEST_WORKERS) --basetemp="$$base/pytest" $(ARGS); status=$$?; \
	if [ $$status = 0 ] || [ $$status = 2 ]; then rm -rf "$$base"; else echo "the tests' temporary folders are kept in $$base"; fi; \
	exit $$status

# The warehouse job (dbt models, docs) on Spark for the days ingested so far (`make ingest` first).
warehouse-spark: spark
	@EV_WAREHOUSE_ENGINE=spark $(RUN) python -m ev_assets.cli warehouse $(ARGS)

ui: setup
	$(RUN) dagster dev -w workspace.yaml --host 127.0.0.1 --port 3000

# The Dagster UI links here (Settings.docs_url in ev_assets/lib/settings/); browsers refuse its file:// links.
docs: $(UV)
	@test -f "$(EV_DATA_DIR)/docs/index.html" || { echo "no docs site in $(EV_DATA_DIR)/docs: run make demo first"; exit 1; }
	$(RUN) python -m http.server 8080 --bind 127.0.0.1 --directory "$(EV_DATA_DIR)/docs"

# The MLflow UI on the data root's registry (Settings.mlflow_url in ev_assets/lib/settings/ links here). Without
# MLflow's job runner: six more Python processes, each importing MLflow, for GenAI jobs the registry never runs.
mlflow: setup
	@mkdir -p "$(abspath $(EV_DATA_DIR))/mlflow/artifacts"
	MLFLOW_DISABLE_TELEMETRY=true MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(RUN) mlflow server \
		--backend-store-uri "sqlite:///$(abspath $(EV_DATA_DIR))/mlflow/mlflow.db" \
		--default-artifact-root "file://$(abspath $(EV_DATA_DIR))/mlflow/artifacts" \
		--host 127.0.0.1 --port 5000 --workers 1

serve: setup
	@$(RUN) python -m ev_assets.api

dashboard: setup
	@$(RUN) python -m ev_assets.dashboard

# The live path: a NATS JetStream broker started here (store under $(EV_DATA_DIR)/live/nats), the simulated feed on
# an accelerated clock (EV_LIVE_SPEED), the consumer, the Dagster daemon with the live sensors, service, dashboard.
live: setup
	@$(RUN) python -m ev_assets.live run $(ARGS)

# Scheduled operation on an accelerated clock (30 days by default, ARGS="--days 5" for fewer), in a data root of its
# own with its own Dagster instance: `EV_DATA_DIR=$(SOAK_DIR) make ui` (or mlflow, dashboard) shows what it did.
SOAK_DIR ?= $(abspath $(EV_DATA_DIR))/soak
soak:
	@$(MAKE) --no-print-directory setup EV_DATA_DIR="$(SOAK_DIR)" DAGSTER_HOME="$(SOAK_DIR)/dagster_home"
	@EV_DATA_DIR="$(SOAK_DIR)" DAGSTER_HOME="$(SOAK_DIR)/dagster_home" $(RUN) python -m ev_assets.soak $(ARGS)

benchmark: setup
	$(RUN) python benchmarks/warehouse_benchmark.py $(ARGS)

# The dbt builds of 7 and 30 simulated days on Spark local[2] and on DuckDB, with the same rows.
benchmark-spark: spark
	$(RUN) python benchmarks/spark_benchmark.py $(ARGS)

clean:
	rm -rf "$(EV_DATA_DIR)" dbt_project/target dbt_project/logs
