"""The configuration resource every asset uses.

`EvConfig` fields left unset fall back to the environment (read once, in `ev_assets.lib.settings`), so the same
code runs from the CLI, the UI and tests; tests set the fields directly instead of touching `os.environ`.
"""


from pathlib import Path
from typing import Optional

import dagster as dg

from ev_assets.lib import warehouse
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
        settings = self.settings()
        return warehouse.connect(settings.warehouse_path, read_only=read_only, memory_limit=settings.duckdb_memory_limit)


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


defs = dg.Definitions(resources={"ev_config": EvConfig()})
