"""chargecloud source: one poll of `GET <chargecloud_url>/<city>` per slot, and its flattening into tables.

A *poll envelope* is what one poll slot pulled: `{city_slug: response, ...}`, the wrapper format of the real
recordings, plus the reserved key `"_failed": {city_slug_or_file: reason}` when something could not be read.
Keys starting with "_" are never cities. The envelope is stored unchanged as the raw pull, so everything
below it can be rebuilt from the raw files.

Three modes give the same envelope (`settings.mode("chargecloud")`, see `fetch.py`):
- `live`: real HTTP through `lib.http.get_json`, one city at a time; a failing city does not fail the rest.
- `replay`: recorded polls (`*.json`, `*.json.gz`) from `settings.replay_folder("chargecloud")`, grouped by
  the slot of their poll time (`replay.py`).
- `simulated`: `lib.simulator.chargecloud_poll` (real schema, offline).

`flatten_poll` turns an envelope into DataFrames matching `lib.tables.TABLES` exactly (`flatten.py`, with the
fast path for stored polls in `shapes.py`); `contracts.py` holds what a value must be to load as it is.

The modules, each leaning only on the ones before it (but `slots`, which asks `replay` for the recorded slots):
`slots` (the poll grid and poll times), `contracts`, `replay`, `fetch`, `facts` (status facts by
column), `rows` (the row collector), `shapes` (the fast path), `flatten`. The feed's values are coerced by `lib.values`.
"""

from ev_assets.lib.sources.chargecloud.contracts import (
    CONNECTOR_RANGES, CONTRACTS, FAILED_KEY, OK_STATUS_CODE, STATUSES, SUPERSEDED_KEY, pick_attempt, poll_failures,
)
from ev_assets.lib.sources.chargecloud.fetch import ChargecloudError, fetch_poll
from ev_assets.lib.sources.chargecloud.flatten import flatten_poll, flatten_polls
from ev_assets.lib.sources.chargecloud.replay import (
    UNPLACED_PARTITION, RecordingError, read_recording, replay_files, replay_index, replay_unplaced,
    unplaced_quarantine,
)
from ev_assets.lib.sources.chargecloud.rows import MASTER_KEYS, TABLE_OF, FlatPoll, Problems, _frame, item_key
from ev_assets.lib.sources.chargecloud.shapes import CityShapes, _CityShape
from ev_assets.lib.sources.chargecloud.slots import (
    PARTITIONS_START, POLL_TIME_TOLERANCE, SOURCE, floor_slot, implausible_poll_time, parse_time, poll_slots, poll_time,
    to_utc,
)

__all__ = [
    "CONNECTOR_RANGES", "CONTRACTS", "FAILED_KEY", "MASTER_KEYS", "OK_STATUS_CODE", "PARTITIONS_START",
    "POLL_TIME_TOLERANCE", "SOURCE", "STATUSES", "SUPERSEDED_KEY", "TABLE_OF", "UNPLACED_PARTITION",
    "ChargecloudError", "CityShapes", "FlatPoll", "Problems", "RecordingError",
    "fetch_poll", "flatten_poll", "flatten_polls", "floor_slot", "implausible_poll_time", "item_key", "parse_time",
    "pick_attempt", "poll_failures", "poll_slots", "poll_time", "read_recording", "replay_files", "replay_index",
    "replay_unplaced", "to_utc", "unplaced_quarantine",
    "_CityShape", "_frame",  # the fast path's parts its tests look at
]
