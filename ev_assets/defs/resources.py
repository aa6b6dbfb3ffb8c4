"""The configuration resource every asset uses.

`EvConfig` fields left unset fall back to the environment (read once, in `ev_assets.lib.settings`), so the same
code runs from the CLI, the UI and tests; tests set the fields directly instead of touching `os.environ`.
"""


from pathlib import Path
from typing import Optional

import dagster as dg

from ev_assets.lib import lake, warehouse
from ev_assets.lib.settings import SOURCE_MODES, Settings, SettingsError

DUCKDB_POOL = "duckdb"  # one writer at a time for the DuckDB file


class EvConfig(dg.ConfigurableResource):
    """Data root, source mode and replay folder; anything unset comes from EV_* environment variables."""

    data_dir: Optional[str] = None
    source: Optional[str] = None
    replay_dir: Optional[str] = None

    def settings(self) -> Settings:
        env = Settings.from_env()
        changes = {}
        if self.data_dir:
            changes["data_dir"] = Path(self.data_dir).resolve()
        if self.source:
            if self.source not in SOURCE_MODES:
                raise SettingsError(f"EvConfig source={self.source!r} is not a source mode; use one of {', '.join(SOURCE_MODES)}")
            changes["source"] = self.source
            changes["source_overrides"] = {}
        if self.replay_dir:
            changes["replay_dir"] = Path(self.replay_dir).resolve()
        return env.with_(**changes) if changes else env

    def connect(self, read_only: bool = False):
        """The warehouse file (writing: with the raw views over the lake made again)."""
        settings = self.settings()
        return warehouse.connect(settings.warehouse_path, read_only=read_only, memory_limit=settings.duckdb_memory_limit,
                                 lake=None if read_only else lake.from_settings(settings))

    def lake(self) -> lake.Lake:
        return lake.from_settings(self.settings())

    def lake_connect(self, partition: tuple[str, str] | None = None):
        """An in-memory DuckDB over the lake's raw tables (or one (source, day) partition of each): what ingestion
        reads back, without the warehouse file."""
        settings = self.settings()
        return warehouse.lake_connection(lake.from_settings(settings), settings.duckdb_memory_limit, partition)


def after_the_warehouse(name: str, job, cron_schedule: str, description: str) -> dg.ScheduleDefinition:
    """A schedule (stopped by default) of an unpartitioned job that reads the warehouse: until `warehouse_job` has
    succeeded once (schedules turned on before the first ingest and warehouse runs) its tick is a skip that says
    so, not a failed run."""

    @dg.schedule(name=name, job=job, cron_schedule=cron_schedule, execution_timezone="UTC",
                 default_status=dg.DefaultScheduleStatus.STOPPED, description=description)
    def _schedule(context: dg.ScheduleEvaluationContext):
        built = context.instance.get_run_records(
            dg.RunsFilter(job_name="warehouse_job", statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1)
        if not built:
            return dg.SkipReason("no warehouse_job run has succeeded yet: the ingest and warehouse runs come first")
        return dg.RunRequest()

    return _schedule


_REGISTRIES: dict = {}  # MLflow root -> its Registry, whose store is ensured once per process (~3 s each time)


class ModelRegistry(dg.ConfigurableResource):
    """The MLflow model registry of the data root (`<data root>/mlflow`): register candidates, read and move the
    `champion` alias. Wraps `ev_assets.lib.ml.registry.Registry`; `data_dir` unset: EV_DATA_DIR, as EvConfig."""

    data_dir: Optional[str] = None

    def store(self):
        """The plain `Registry` of this data root (one per process and root; its store created when missing)."""
        from ev_assets.lib.ml.registry import Registry

        settings = Settings.from_env()
        if self.data_dir:
            settings = settings.with_(data_dir=Path(self.data_dir).resolve())
        root = settings.mlflow_dir
        if root not in _REGISTRIES or not (root / "mlflow.db").exists():
            _REGISTRIES[root] = Registry(root, store_uri=settings.mlflow_store_uri)
            _REGISTRIES[root].ensure()
        return _REGISTRIES[root]


defs = dg.Definitions(resources={"ev_config": EvConfig(), "model_registry": ModelRegistry()})
