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


_REGISTRIES: dict = {}  # MLflow root -> its Registry, whose store is ensured once per process (~3 s each time)


class ModelRegistry(dg.ConfigurableResource):
    """The MLflow model registry of the data root (`<data root>/mlflow`): register candidates, read and move the
    `champion` alias. Wraps `ev_assets.lib.ml.registry.Registry`; `data_dir` unset: EV_DATA_DIR, as EvConfig."""

    data_dir: Optional[str] = None

    def store(self):
        """The plain `Registry` of this data root (one per process and root; its store created when missing)."""
        from ev_assets.lib.ml.registry import Registry

        data_dir = Path(self.data_dir).resolve() if self.data_dir else Settings.from_env().data_dir
        root = Path(data_dir) / "mlflow"
        if root not in _REGISTRIES or not (root / "mlflow.db").exists():
            _REGISTRIES[root] = Registry(root)
            _REGISTRIES[root].ensure()
        return _REGISTRIES[root]


defs = dg.Definitions(resources={"ev_config": EvConfig(), "model_registry": ModelRegistry()})
