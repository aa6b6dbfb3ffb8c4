"""Feature sets: what each model family trains on, read once from the warehouse and kept as Parquet under the
data root (`ml/features/<feature set>/`), with their size, time range, schema hash and the data versions of their
inputs."""


import hashlib
import os
from pathlib import Path

import dagster as dg
import pandas as pd

from ev_assets.defs.ml.families import FAMILIES, Family, Frames
from ev_assets.defs.resources import EvConfig
from ev_assets.lib.settings import Settings

DATA_VERSION_TAG = "dagster/data_version"


def feature_dir(settings: Settings, family: Family) -> Path:
    return settings.feature_sets_dir / family.feature_set


def read_feature_set(settings: Settings, family: Family) -> Frames:
    folder = feature_dir(settings, family)
    return {path.stem: pd.read_parquet(path) for path in sorted(folder.glob("*.parquet"))}


def schema_hash(frames: Frames) -> str:
    """Changes when a column, its type or its order changes; not with the rows."""
    text = ";".join(f"{name}:{','.join(f'{c}={t}' for c, t in frame.dtypes.astype(str).items())}" for name, frame in sorted(frames.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def input_versions(context: dg.AssetExecutionContext, inputs: tuple[str, ...]) -> dict[str, str]:
    """Upstream asset -> the data version of its latest materialization (what this feature set was built from)."""
    versions = {}
    for name in inputs:
        event = context.instance.get_latest_materialization_event(dg.AssetKey.from_user_string(name))
        materialization = event.asset_materialization if event else None
        versions[name] = (materialization.tags or {}).get(DATA_VERSION_TAG, "unknown") if materialization else "never materialized"
    return versions


def build_feature_set_asset(family: Family) -> dg.AssetsDefinition:
    @dg.asset(
        name=family.feature_set,
        key_prefix="ml",
        group_name="ml",
        deps=[dg.AssetKey.from_user_string(name) for name in family.inputs],
        kinds={"parquet", "pandas"},
        description=family.description,
    )
    def feature_set(context: dg.AssetExecutionContext, ev_config: EvConfig) -> dg.MaterializeResult:
        settings = ev_config.settings()
        with ev_config.connect(read_only=True) as con:
            frames = family.build(con, settings)
        folder = feature_dir(settings, family)
        folder.mkdir(parents=True, exist_ok=True)
        # Each file is replaced atomically: the service reads these files while the ML job rewrites them.
        for name, frame in frames.items():
            partial = folder / f".{name}.parquet.partial"
            frame.to_parquet(partial, index=False)
            os.replace(partial, folder / f"{name}.parquet")
        for stale in folder.glob("*.parquet"):
            if stale.stem not in frames:
                stale.unlink()
        first = next(iter(frames.values()))
        metadata = {
            "dagster/row_count": int(sum(len(f) for f in frames.values())),
            "rows_per_frame": dg.MetadataValue.json({name: len(f) for name, f in frames.items()}),
            "schema_hash": schema_hash(frames),
            "path": dg.MetadataValue.path(str(folder)),
            "input_data_versions": dg.MetadataValue.json(input_versions(context, family.inputs)),
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(c, str(t)) for c, t in first.dtypes.astype(str).items()]
            ),
        }
        if family.time_column and family.time_column in first and len(first):
            metadata["time_from"] = str(first[family.time_column].min())
            metadata["time_to"] = str(first[family.time_column].max())
        context.log.info(f"{family.feature_set}: {metadata['dagster/row_count']} rows")
        return dg.MaterializeResult(metadata=metadata)

    return feature_set


feature_set_assets = [build_feature_set_asset(family) for family in FAMILIES]
