"""Station models from the warehouse marts: will a station have a free charging point in 10 / 60 minutes (the next
poll, and the poll an hour later) (classification), and how used is a station per day (regression, for site
planning). Plain functions: a read-only DuckDB connection in, frames and `TrainedModel`s out.

- `availability_features`: the station-time feature set (`station_time_features`, one row per station and
  10-minute poll slot, with the targets `available_in_<h>min`), and the same rows from the live path
  (`live_station_time_features`);
- `availability_models`: the classifiers `station_available_<h>min` (`train_availability_models`) and their
  baselines;
- `utilization`: the station-day feature set (`station_utilization_features`) and the regressions
  `station_sessions_per_day` / `station_occupied_share` (`train_utilization_models`);
- `shared`: what both families use (reading the marts, POI counts, operator / city codes, holidays, fitting).

Every training function raises `core.InsufficientData` with the reason when the data cannot make a model.
"""

from ev_assets.lib.ml.stations.availability_features import (
    AVAILABILITY_FEATURES,
    CALENDAR,
    HORIZONS,
    ROLLING_HOURS,
    live_station_time_features,
    station_time_features,
)
from ev_assets.lib.ml.stations.availability_models import (
    BASELINE_HISTORY,
    BASELINE_PERSISTENCE,
    CLASSIFICATION_PARAMS,
    train_availability_models,
)
from ev_assets.lib.ml.stations.shared import GRID_MINUTES, feature_codes
from ev_assets.lib.ml.stations.utilization import (
    UTILIZATION_FEATURES,
    station_utilization_features,
    train_utilization_models,
)

__all__ = [
    "AVAILABILITY_FEATURES", "BASELINE_HISTORY", "BASELINE_PERSISTENCE", "CALENDAR", "CLASSIFICATION_PARAMS",
    "GRID_MINUTES", "HORIZONS", "ROLLING_HOURS", "UTILIZATION_FEATURES", "feature_codes",
    "live_station_time_features", "station_time_features", "station_utilization_features",
    "train_availability_models", "train_utilization_models",
]
