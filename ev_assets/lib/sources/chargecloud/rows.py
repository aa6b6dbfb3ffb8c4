"""The tables of flattened polls: `FlatPoll` (what flattening gives), and `_Rows`, the collector the full path
appends row tuples to and a city shape adds its blocks of status facts to (through the few methods under
"what a city shape needs", see `shapes.RowCollector`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ev_assets.lib import tables
from ev_assets.lib.sources.chargecloud.facts import _FACTS, _NAT, _Facts, _ns
from ev_assets.lib.sources.chargecloud.slots import SOURCE
from ev_assets.lib.values import record_json

if TYPE_CHECKING:
    from ev_assets.lib.sources.chargecloud.shapes import CityShapes, _CityShape


@dataclass
class FlatPoll:
    """One or more polls as DataFrames with exactly the columns of their `lib.tables` table.

    The status facts (`status_chargingpoints`, `status_connectors`) are built when first asked for, from `facts`.
    """

    stations: pd.DataFrame
    charging_points: pd.DataFrame
    connectors: pd.DataFrame
    poll_log: pd.DataFrame
    quarantine: pd.DataFrame
    facts: dict[str, "_Facts"] = field(repr=False, compare=False)
    # contract rule (see CONTRACTS) -> what broke it: the count and the first reasons
    problems: dict[str, "Problems"] = field(default_factory=dict)

    @cached_property
    def status_chargingpoints(self) -> pd.DataFrame:
        return self.facts["status_chargingpoints"].frame()

    @cached_property
    def status_connectors(self) -> pd.DataFrame:
        return self.facts["status_connectors"].frame()

    def tables(self, arrow: bool = False) -> dict[str, pd.DataFrame]:
        """The frames by their table name in `lib.tables`, ready for the loader. With `arrow`, the status facts are
        backed by Arrow dictionary arrays rather than Python strings: the same values, which DuckDB loads faster."""
        frames = {TABLE_OF[name]: getattr(self, name) for name in TABLE_OF if not (arrow and name in self.facts)}
        if arrow:
            frames.update({name: facts.arrow_frame() for name, facts in self.facts.items()})
        return {table: frames[table] for table in TABLE_OF.values()}


@dataclass
class Problems:
    """Records that broke one data contract: how many, and the reasons of the first few."""

    count: int = 0
    examples: list[str] = field(default_factory=list)
    MAX_EXAMPLES = 10

    def add(self, reason: str) -> None:
        self.count += 1
        if len(self.examples) < self.MAX_EXAMPLES:
            self.examples.append(reason)

    def merge(self, other: "Problems") -> None:
        self.count += other.count
        self.examples = (self.examples + other.examples)[: self.MAX_EXAMPLES]


TABLE_OF = {
    "stations": "chargingstations",
    "charging_points": "chargingpoints",
    "connectors": "connectors",
    "status_chargingpoints": "status_chargingpoints",
    "status_connectors": "status_connectors",
    "poll_log": "chargecloud_poll_log",
    "quarantine": "quarantine",
}
# Master data holds one row per version of an item: its key plus the hash of its attributes.
MASTER_KEYS = {
    field: [*tables.VERSIONED[TABLE_OF[field]], "attr_hash"] for field in ("stations", "charging_points", "connectors")
}


def item_key(table: str) -> list[str]:
    """The columns naming one item of a master-data table; each of its versions adds `attr_hash`."""
    return list(tables.VERSIONED[table])


class _Rows:
    """Row tuples of every table of one poll, in `lib.tables` column order, plus the poll's context.

    The status facts end up in `facts` (blocks of columns, text as codes): the full path appends tuples to
    `status_chargingpoints` / `status_connectors`, which `flush_status_rows` moves there, and a city shape adds
    a block per city and poll.
    """

    def __init__(self, slot: datetime, raw_file: str, shapes: "CityShapes"):
        self.start_poll(slot, raw_file)
        self.stations: list[tuple] = []
        self.charging_points: list[tuple] = []
        self.connectors: list[tuple] = []
        self.status_chargingpoints: list[tuple] = []
        self.status_connectors: list[tuple] = []
        self.shapes = shapes
        self.strings = shapes.strings
        self.facts = {name: _Facts(name, self.strings) for name in _FACTS}
        self.poll_log: list[tuple] = []
        self.quarantine_rows: list[dict] = []
        self.problems: dict[str, Problems] = defaultdict(Problems)
        # master data versions seen so far: {list name: {(key..., attr_hash): row}}
        self._versions: dict[str, dict[tuple, tuple]] = {name: {} for name in MASTER_KEYS}
        # the shapes used here -> [first, last] poll time of the polls that reused them (fold into _versions)
        self.seen: dict[_CityShape, list] = {}
        self.capture: list[tuple] | None = None  # quarantined records while a shape is being learnt

    def start_poll(self, slot: datetime, raw_file: str) -> None:
        self.slot = slot
        self.slot_ns = _ns(slot)
        self.raw_file = raw_file
        self.partition_key = slot.isoformat()
        # ids with a status in this poll -> the city that reported it first: charging point ids, and connectors
        # as the repr of (charging point id, connector id) (str keys hash once)
        self.reported: dict[str, str] = {}
        self.reported_connectors: dict[str, str] = {}
        self.superseded: str | None = None

    def earlier_report(self, key: tuple[str, ...], city: str) -> str | None:
        """The city that already reported a status for `key` in this poll, or None (and `city` now has)."""
        reported, key = (self.reported, key[0]) if len(key) == 1 else (self.reported_connectors, repr(key))
        if key in reported:
            return reported[key]
        reported[key] = city
        return None

    def compact(self) -> None:
        """Fold the master rows collected so far into their versions, widening first/last seen."""
        for name, keys in MASTER_KEYS.items():
            cols = tables.columns(TABLE_OF[name])
            positions = [cols.index(k) for k in keys]
            versions = self._versions[name]
            for row in getattr(self, name):
                key = tuple(row[i] for i in positions)
                old = versions.get(key)
                versions[key] = row if old is None else (*old[:-2], min(old[-2], row[-2]), max(old[-1], row[-1]))
            getattr(self, name).clear()

    def flush_status_rows(self) -> None:
        """Move the status rows of the full path into the facts (before a shape adds a block, to keep the order)."""
        for name in _FACTS:
            pending = getattr(self, name)
            if pending:
                self.facts[name].add_rows(pending)
                pending.clear()

    def quarantine(self, rule: str, level: str, record_id: str | None, reason: str, record: Any) -> None:
        """A record that broke the contract `rule` (a key of CONTRACTS), kept with the reason."""
        if self.capture is not None:
            self.capture.append((rule, level, record_id, reason, record))
        self.quarantine_text(rule, level, record_id, reason, record_json(record))

    def quarantine_text(self, rule: str, level: str, record_id: str | None, reason: str, text: str) -> None:
        self.quarantine_rows.append(tables.quarantine_row(SOURCE, record_id, reason, text, self.raw_file, level=level,
                                                          partition_key=self.partition_key))
        self.problems[rule].add(f"{self.slot:%Y-%m-%d %H:%M} {record_id or level}: {reason}")

    def failed_poll(self, city: str, poll_time: datetime | None, reason: str) -> None:
        """A city whose poll could not be used: a poll log row saying why."""
        self.poll_log.append((self.slot, city, poll_time, False, reason, 0, 0, 0, self.raw_file))
        self.problems["poll"].add(f"{self.slot:%Y-%m-%d %H:%M} {city}: {reason}")

    # --- what a city shape needs of the collector -------------------------------------------------------
    def mark(self) -> tuple[int, int, int, int, int]:
        """How many rows the master-data lists and the full path's status lists hold so far."""
        return (len(self.stations), len(self.charging_points), len(self.connectors),
                len(self.status_chargingpoints), len(self.status_connectors))

    def since(self, mark: tuple[int, ...]) -> tuple[list[tuple], ...]:
        """The rows added after `mark` to the lists it counts, in its order."""
        lists = (self.stations, self.charging_points, self.connectors, self.status_chargingpoints, self.status_connectors)
        return tuple(rows[start:] for rows, start in zip(lists, mark))

    def reported_elsewhere(self, charging_points: dict[str, str], connectors: dict[str, str]) -> bool:
        """Whether one of these charging points or connectors (keys as `earlier_report` keeps them) already has a
        status in this poll."""
        return not (
            self.reported.keys().isdisjoint(charging_points.keys())  # (iterates the smaller)
            and self.reported_connectors.keys().isdisjoint(connectors.keys())
        )

    def add_status_block(self, name: str, n: int, columns: list) -> None:
        """A block of `n` rows of a status table, after the full path's rows collected so far (to keep the order)."""
        self.flush_status_rows()
        self.facts[name].add(n, columns)

    def claim_reports(self, charging_points: dict[str, str], connectors: dict[str, str]) -> None:
        """These charging points and connectors have their status in this poll, from the city given."""
        self.reported.update(charging_points)
        self.reported_connectors.update(connectors)

    def learnt(self, shape: "_CityShape") -> None:
        """A shape learnt from this poll: its master rows are in this call's already."""
        self.seen[shape] = [None, None]

    def reused(self, shape: "_CityShape", master: dict[str, list[tuple]], poll_time: datetime) -> None:
        """A poll reused `shape`, whose master rows (without first/last seen) are `master`: the versions widen."""
        seen = self.seen.get(shape)
        if seen is None:  # learnt by an earlier call: its versions join as the full path would add them
            for name, rows in master.items():
                getattr(self, name).extend((*row, poll_time, poll_time) for row in rows)
            self.seen[shape] = [None, None]
        elif seen[0] is None:
            seen[0] = seen[1] = poll_time
        else:
            seen[0], seen[1] = min(seen[0], poll_time), max(seen[1], poll_time)

    def frames(self) -> FlatPoll:
        self.compact()
        self.flush_status_rows()
        for shape, (first, last) in self.seen.items():  # the polls that reused a shape widen its versions' seen
            if first is not None:
                shape.fold_seen(self._versions, first, last)
        return FlatPoll(
            stations=_frame("chargingstations", list(self._versions["stations"].values())),
            charging_points=_frame("chargingpoints", list(self._versions["charging_points"].values())),
            connectors=_frame("connectors", list(self._versions["connectors"].values())),
            poll_log=_frame("chargecloud_poll_log", self.poll_log),
            quarantine=tables.frame("quarantine", self.quarantine_rows),
            facts=self.facts,
            problems=dict(self.problems),
        )


def _frame(name: str, rows: list[tuple]) -> pd.DataFrame:
    """`tables.frame(name, rows)` for rows whose times are UTC datetimes or None, with the times converted here:
    `pd.to_datetime` turns datetimes into Timestamps one by one to decide whether to cache them."""
    times = {i: col for i, (col, typ) in enumerate(tables.TABLES[name]) if typ == "TIMESTAMPTZ"}
    if not rows or not times:
        return tables.frame(name, rows)
    frame = tables.frame(name, [tuple(None if i in times else value for i, value in enumerate(row)) for row in rows])
    for i, col in times.items():
        ns = np.fromiter((_NAT if row[i] is None else _ns(row[i]) for row in rows), np.int64, len(rows))
        frame[col] = pd.DatetimeIndex(ns.view("M8[ns]")).tz_localize("UTC")
    return frame

