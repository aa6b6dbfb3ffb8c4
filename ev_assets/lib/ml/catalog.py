"""The names of the feature sets and of the registered models, by family: the one place they are written. Asset
keys (`ml/<feature set>`, `ml/<model>_candidate|_evaluation|_champion`), MLflow registered models, the service's
endpoints, the dashboard and the monitoring all read them from here.

Availability horizons follow the 10-minute poll grid: `station_available_10min` predicts the station's next poll
(t + 10 min), `station_available_60min` the poll an hour later. The vehicle models keep "15min": their readings are
irregular, and the target is the reading nearest t + 15 min (lib/sources/telemetry/features.py).
"""

from __future__ import annotations

STATION_TIME, STATION_DAY = "station_time_features", "station_day_features"
TELEMETRY, SESSIONS = "vehicle_telemetry_features", "session_features"

AVAILABILITY_HORIZONS = (10, 60)  # minutes ahead, on the 10-minute poll grid
AVAILABILITY = {h: f"station_available_{h}min" for h in AVAILABILITY_HORIZONS}
SESSIONS_PER_DAY, OCCUPIED_SHARE = "station_sessions_per_day", "station_occupied_share"
PLUGGED_IN, ENERGY_TO_FULL = "vehicle_plugged_in_15min", "vehicle_energy_to_full_15min"
SESSION_ENERGY, SESSION_DURATION = "session_energy_kwh", "session_duration_h"

# feature set -> the models trained on it, in the order their training returns them
MODELS_OF = {
    STATION_TIME: tuple(AVAILABILITY.values()),
    STATION_DAY: (SESSIONS_PER_DAY, OCCUPIED_SHARE),
    TELEMETRY: (PLUGGED_IN, ENERGY_TO_FULL),
    SESSIONS: (SESSION_ENERGY, SESSION_DURATION),
}
MODELS = tuple(name for names in MODELS_OF.values() for name in names)
# champions exported to ONNX for edge devices (a charger, a vehicle), each with a blocking parity check
ONNX_MODELS = (*AVAILABILITY.values(), PLUGGED_IN)
# models with a drift report and a live error (their outcomes are polled)
MONITORED = tuple(AVAILABILITY.values())
