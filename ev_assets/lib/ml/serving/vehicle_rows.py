"""The telemetry row of a request: the latest of a vehicle's readings, cleaned and shaped as in training."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd

from ev_assets.lib.ml import plugin
from ev_assets.lib.ml.serving.base import NotReady, Unprocessable, _inputs
from ev_assets.lib.sources.telemetry import features as telemetry


@dataclass
class VehicleRow:
    reading_at: pd.Timestamp  # the latest usable reading: the forecast is for reading_at + horizon
    inputs: dict[str, float]
    x: np.ndarray
    readings_used: int
    dropped: dict[str, int] = field(default_factory=dict)


def vehicle_features(readings: pd.DataFrame, features: Iterable[str], gap_minutes: float) -> VehicleRow:
    """The model row of the latest reading of one vehicle's `readings` (columns reading_at, soc_pct, plugged_in),
    cleaned as in training: sorted by time, the first of repeated timestamps kept, unusable rows dropped."""
    features = list(features)
    frame = readings.copy()
    if "vehicle_id" not in frame.columns:
        frame["vehicle_id"] = "request"
    frame["vehicle_id"] = frame["vehicle_id"].fillna("request")
    report = telemetry.TraceReport()
    clean = telemetry.clean_traces(frame, gap_minutes, report)
    if clean.empty:
        raise Unprocessable(f"no usable reading: {report.summary()}")
    latest = clean.iloc[[-1]]
    matrix = plugin.model_matrix(latest)
    missing = [f for f in features if f not in matrix.columns]
    if missing:
        raise NotReady(f"the champion needs features the telemetry features lack ({', '.join(missing)}): retrain")
    x = matrix[features].to_numpy(dtype=float)[0]
    return VehicleRow(pd.Timestamp(latest["reading_at"].iloc[0]).tz_convert("UTC"), _inputs(features, x),
                      x, len(clean), dict(report.dropped))
