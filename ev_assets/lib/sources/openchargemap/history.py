"""The registry's history: every version of every station over the stored pulls (type-2, built in dbt as
`dim_ocm_station_history`).

A registry snapshot replaces the previous one, but what a station was (its operator, status, points) matters for
the months it was so. Each stored pull is parsed, oldest first; a station gets a row for the first pull, and a new
row each time a later pull gives it other values. A station the registry drops keeps its last version.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from ev_assets.lib import tables
from ev_assets.lib.sources.openchargemap.parse import OcmTables

# what makes a version: everything but where and when it was seen
NOT_VALUES = ("raw_file", "first_pulled_at")


def station_versions(pulls: list[tuple[OcmTables, datetime]]) -> pd.DataFrame:
    """The rows of `raw.ocm_stations`: for each station, the first pull (oldest first) of each run of equal values,
    with that pull's time as `first_pulled_at`."""
    frames = [parsed.stations.assign(first_pulled_at=pd.Timestamp(pulled_at)) for parsed, pulled_at in pulls
              if not parsed.stations.empty]
    if not frames:
        return tables.frame("ocm_stations")
    rows = pd.concat(frames, ignore_index=True)
    values = [c for c in rows.columns if c not in NOT_VALUES]
    digest = pd.util.hash_pandas_object(rows[values].astype(str), index=False)
    rows = rows.assign(_digest=digest.to_numpy(), _order=range(len(rows)))
    rows = rows.sort_values(["ocm_id", "_order"], kind="stable")
    changed = rows["_digest"].ne(rows.groupby("ocm_id")["_digest"].shift())
    kept = rows[changed].sort_values("_order").drop(columns=["_digest", "_order"]).reset_index(drop=True)
    return tables.frame("ocm_stations", kept)
