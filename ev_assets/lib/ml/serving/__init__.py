"""Feature rows at serving time, built by the training code, so that a served model sees what it was trained on.

| model(s)                                   | where the row comes from                       | built by (training code)                     |
|--------------------------------------------|------------------------------------------------|----------------------------------------------|
| station_available_10min / _60min           | the station's row of `station_time_features`   | `stations.station_time_features` (the ML job |
|                                            | at or before `at`                              | writes it), rounded by `core.float32_exact`  |
|                                            |                                                | over the same columns as in training         |
| station_sessions_per_day / _occupied_share | the station's latest row of                    | `stations.station_utilization_features`; the |
|                                            | `station_day_features`, with the calendar of   | calendar as there (`stations.shared`)        |
|                                            | the requested day                              | (no rounding: training does none)            |
| vehicle_plugged_in_15min / energy_to_full  | the readings of the request                    | `telemetry.features.clean_traces`, then      |
|                                            |                                                | `plugin.model_matrix` (its float32 grids)    |
| session_energy_kwh / session_duration_h    | the user's sessions in `session_features` and  | `sessions.usable_sessions`, `add_history`,   |
|                                            | the request as one more (unfinished) session   | `add_calendar`, `encode` (no rounding)       |

The session models code the garage / site / station / user type with a vocabulary learned on their training rows
(`sessions.vocabularies_of`), bundled with the logged model (`encodings.json` of its run): the service codes with
it. For a version logged before the codes were bundled, `session_vocabularies` rebuilds it the same way
from the session feature set and the champion's recorded split (`split_<dataset>_valid_start`): the training rows
are the sessions of each trained dataset that plugged in before its validation block. That holds as long as no
session older than that is added to the raw tables later (then the codes shift; see the module's report).

Feature sets are read from `<data root>/ml/features/<set>/*.parquet` and re-read when a file changes (the ML job
replaces them atomically); of the station-time set only the last `HISTORY_DAYS` days are kept in memory.
Errors a caller can act on are `ServingError`s with an HTTP status: 404 unknown station / user, 422 unusable
input, 503 no feature set yet or a feature set that does not fit the champion.

- `base`: the errors (`ServingError` and its kinds), what the row builders share;
- `feature_sets`: the feature sets on disk (`FeatureSetCache`, `FeatureSets`);
- `station_rows`: availability rows (feature set and live path: `OnlineFeatures`) and utilisation rows;
- `vehicle_rows`: the telemetry row of a request's readings;
- `session_rows`: the session row of a plug-in and the session models' codes.
"""

from ev_assets.lib.ml.serving.base import NotFound, NotReady, ServingError, Stale, Unprocessable
from ev_assets.lib.ml.serving.feature_sets import FeatureSetCache, FeatureSets
from ev_assets.lib.ml.serving.session_rows import SessionHistory, SessionRow, session_features
from ev_assets.lib.ml.serving.station_rows import (
    OnlineFeatures,
    OnlineRow,
    StationDayIndex,
    StationTimeIndex,
    availability_features,
    utilization_features,
)
from ev_assets.lib.ml.serving.vehicle_rows import VehicleRow, vehicle_features

__all__ = [
    "FeatureSetCache", "FeatureSets", "NotFound", "NotReady", "OnlineFeatures", "OnlineRow", "ServingError",
    "SessionHistory", "SessionRow", "Stale", "StationDayIndex", "StationTimeIndex", "Unprocessable", "VehicleRow",
    "availability_features", "session_features", "utilization_features", "vehicle_features",
]
