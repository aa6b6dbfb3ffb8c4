"""The status changes of a stored poll: only the charging points and connectors whose status differs from their
last known one (or that are new), from the same flattening as the batch tables (`chargecloud.flatten_poll`).

`StatusTracker` keeps the last known status of each item in memory. A publisher that starts seeds it from the
poll stored before the first one it publishes (`seed`), so a restart does not publish the whole fleet again; one
that has nothing to seed from publishes every item of its first poll (previous status `null`), which gives the
consumer a complete picture to start from. An item missing from a poll keeps its last status: its next report
is a change only if the status differs.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from ev_assets.lib.sources import chargecloud
from ev_assets.lib.live import messages
from ev_assets.lib.live.messages import STATUS_TABLES, Outgoing


def _keys(table: str, frame: pd.DataFrame) -> pd.Series:
    if table == "status_connectors":
        return frame["charging_point_id"].astype(str) + "|" + frame["connector_id"].astype(str)
    return frame["charging_point_id"].astype(str)


class StatusTracker:
    def __init__(self) -> None:
        self.last: dict[str, dict[str, str]] = {table: {} for table in STATUS_TABLES}

    def seed(self, flat: chargecloud.FlatPoll) -> None:
        for table in STATUS_TABLES:
            frame = getattr(flat, table)
            self.last[table].update(zip(_keys(table, frame), frame["status"].astype(str)))

    def changes(self, flat: chargecloud.FlatPoll) -> list[Outgoing]:
        """The change messages of one flattened poll (all its cities), then one poll-complete marker per city, and
        the tracker moved on to this poll."""
        out: list[Outgoing] = []
        per_city: dict[str, list[int]] = {}  # city -> [items, changes]
        for table in STATUS_TABLES:
            frame = getattr(flat, table)
            if frame.empty:
                continue
            last = self.last[table]
            keys = _keys(table, frame)
            status = frame["status"].astype(str)
            previous = keys.map(last)
            changed = (previous != status).to_numpy()
            for city, n in frame["city_slug"].value_counts().items():
                per_city.setdefault(city, [0, 0])[0] += int(n)
            rows = frame.loc[changed]
            before = previous[changed]
            for row, prev in zip(rows.to_dict("records"), before):
                out.append(messages.status_change(table, row, None if pd.isna(prev) else prev))
                per_city[row["city_slug"]][1] += 1
            last.update(zip(keys, status))
        for log in flat.poll_log.to_dict("records"):
            items, n_changes = per_city.get(log["city_slug"], (0, 0))
            poll_time = None if pd.isna(log["poll_time"]) else log["poll_time"]
            out.append(messages.poll_complete(log["city_slug"], log["poll_slot"], poll_time, bool(log["ok"]),
                                              items, n_changes))
        return out


def poll_changes(tracker: StatusTracker, envelope: dict | bytes, slot: datetime, raw_file: str = "") -> list[Outgoing]:
    """The messages of one stored poll (its envelope or its stored bytes)."""
    return tracker.changes(chargecloud.flatten_poll(envelope, slot, raw_file))
