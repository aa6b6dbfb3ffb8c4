"""City shapes: the fast path of flattening stored polls.

A city's answer is, most of the time, its answer of ten minutes before with other status values. Once one answer
of a city went the full way, `_CityShape.learn` keeps what it flattened to as a function of its status values, and
the next answers with the same bytes between those values only have the values read out of the raw JSON
(`reusable_shape`, `_CityShape.apply`). Whatever the shortcut cannot vouch for takes the full way.

A shape sees the row collector only through `RowCollector`.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from operator import itemgetter
from typing import Any, Callable, Iterable, Protocol

import numpy as np

from ev_assets.lib import tables
from ev_assets.lib.sources.chargecloud.contracts import STATUSES
from ev_assets.lib.sources.chargecloud.facts import _Strings, _ns
from ev_assets.lib.sources.chargecloud.rows import MASTER_KEYS, TABLE_OF
from ev_assets.lib.values import identifier, record_json

_SHAPES_PER_CITY = 4  # a city flipping between a few master-data states keeps each
# A status value as a stored poll spells it (json.dumps writes `": "`). A quote inside a JSON string is escaped,
# so in valid JSON every match is a key ending in "status" with a plain string value, and nothing else.
_STATUS_VALUE = re.compile(rb'status": ?"([A-Za-z_]*)"')
_STATUS_WORD = re.compile(r"[A-Za-z_]*")
_STATUS_OF = {status.encode(): status for status in STATUSES}  # a raw value that `_status` keeps as it is
_STATUS_SET = frozenset(_STATUS_OF)
_TEXT_OF: dict[bytes, str] = {}  # decoded status values, shared


class CityShapes:
    """What flattening learnt of each city's answers (see `_CityShape`), kept from one `flatten_polls` call to the
    next, e.g. a day's polls after the day before's: then a city is flattened in full only when its stations
    change, not once a call. For one caller at a time."""

    def __init__(self):
        self.strings = _Strings()
        self.by_city: dict[str, list[_CityShape]] = {}  # latest first
        self.last: dict[str, tuple] = {}  # city -> (raw data, shape, status values) of its last reused answer

    def add(self, city: str, shape: "_CityShape") -> None:
        self.by_city[city] = [shape, *self.by_city.get(city, ())][:_SHAPES_PER_CITY]


class RowCollector(Protocol):
    """What a city shape needs of the rows being collected (`rows._Rows`)."""

    shapes: CityShapes
    strings: _Strings
    slot_ns: int  # the poll slot, as ns since the epoch

    def since(self, mark: tuple[int, ...]) -> tuple[list[tuple], ...]: ...
    def reported_elsewhere(self, charging_points: dict[str, str], connectors: dict[str, str]) -> bool: ...
    def add_status_block(self, name: str, n: int, columns: list) -> None: ...
    def claim_reports(self, charging_points: dict[str, str], connectors: dict[str, str]) -> None: ...
    def quarantine_text(self, rule: str, level: str, record_id: str | None, reason: str, text: str) -> None: ...
    def reused(self, shape: "_CityShape", master: dict[str, list[tuple]], poll_time: datetime) -> None: ...


def reusable_shape(rows: RowCollector, city: str, data_raw: Any) -> "tuple[_CityShape, list[bytes]] | None":
    """The shape of the city that this `data` has (the status values aside) and can reuse in this poll, with the
    status values of this `data`; None when there is none."""
    last = rows.shapes.last.get(city)
    if last is not None and last[0] == data_raw:  # the very answer of its last poll: nothing to split
        return (last[1], last[2]) if last[1].ready(rows, last[2]) else None
    parts = _STATUS_VALUE.split(data_raw)
    segments, values = parts[0::2], parts[1::2]
    for shape in rows.shapes.by_city.get(city, ()):
        if shape.matches(segments) and shape.ready(rows, values):
            rows.shapes.last[city] = (data_raw, shape, values)
            return shape, values
    return None


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """json's object hook that refuses duplicate keys (json keeps the last, which reorders what a scan sees)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKey
    return obj


def _status_fields(value: Any, path: tuple, found: list) -> None:
    """(path, value) of every key ending in "status" whose value is a plain word, in document order: what
    `_STATUS_VALUE` finds in the raw JSON of `value` when nothing in it is spelled with escapes."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str):
                if key.endswith("status") and _STATUS_WORD.fullmatch(item):
                    found.append(((*path, key), item))
            elif isinstance(item, (dict, list)):
                _status_fields(item, (*path, key), found)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _status_fields(item, (*path, i), found)


def _picker(indices: list[int]) -> Callable[[list], tuple]:
    """A function giving the items at `indices` as a tuple (itemgetter, also for none or one index)."""
    if not indices:
        return lambda values: ()
    if len(indices) == 1:
        index = indices[0]
        return lambda values: (values[index],)
    return itemgetter(*indices)


def _text_of(value: bytes) -> str:
    text = _TEXT_OF.get(value)
    if text is None:
        text = _TEXT_OF[value] = value.decode("ascii")
    return text


class _CityShape:
    """What one city's clean answer flattened to, as a function of its status values.

    `segments` are the bytes of the answer's `data` between its status values (`_STATUS_VALUE.split`). An answer
    with the same segments differs only in those values; `learn` made sure each of them is the status of a
    charging point or connector (or a parking sensor's) and flows nowhere else but into a status row or the text
    of a quarantined connector. So its tables are the learnt ones with the new values filled in: no station,
    charging point or connector changed, and the master-data versions are the same.
    """

    @classmethod
    def learn(cls, rows: RowCollector, city: str, data: list, data_raw: bytes, mark: tuple, captured: list) -> "_CityShape | None":
        """The shape of the city's stations just flattened (rows since `mark`), or None when the polls after cannot
        reuse it safely: records without ids or with a bad or repeated status (they depend on the statuses),
        duplicate keys, or a status value anywhere but in a status field."""
        if any(rule not in ("coordinates", "ratings") for rule, *_ in captured):
            return None
        parts = _STATUS_VALUE.split(data_raw)
        values = parts[1::2]
        try:
            json.loads(data_raw, object_pairs_hook=_unique_keys)
            found: list = []
            _status_fields(data, (), found)
        except (_DuplicateKey, RecursionError):
            return None
        if [value.encode() for _, value in found] != values:
            return None  # something spelled with escapes or odd spacing: the scan would not see the same values

        # every charging point and connector has its status row (nothing was quarantined for ids or statuses)
        *master_rows, cp_rows, conn_rows = rows.since(mark)
        evse_row, conn_row, conn_of = {}, {}, {}
        for i, station in enumerate(data):
            for j, evse in enumerate(station.get("evses") or ()):
                r = len(evse_row)
                if r >= len(cp_rows) or cp_rows[r][4] != identifier(evse.get("id")):
                    return None
                evse_row[i, j] = r
                for k, conn in enumerate(evse.get("connectors") or ()):
                    c = len(conn_row)
                    if c >= len(conn_rows) or conn_rows[c][4:6] != (cp_rows[r][4], identifier(conn.get("id"))):
                        return None
                    conn_row[i, j, k] = c
                    conn_of[id(conn)] = (i, j, k)
        if len(evse_row) != len(cp_rows) or len(conn_row) != len(conn_rows):
            return None

        shape = cls()
        shape.segments = parts[0::2]
        shape.counts = tuple(len(added) for added in master_rows)
        codes = rows.strings
        shape.city = codes[city]
        shape.cp_station, shape.cp_ids, shape.cp_uids, shape.cp_status, shape.cp_park = (
            np.fromiter((codes[row[i]] for row in cp_rows), np.int32, len(cp_rows)) for i in (3, 4, 5, 6, 7)
        )
        shape.conn_station, shape.conn_cp, shape.conn_ids, shape.conn_status = (
            np.fromiter((codes[row[i]] for row in conn_rows), np.int32, len(conn_rows)) for i in (3, 4, 5, 6)
        )
        cp_status, park, conn_status, conn_value = {}, {}, {}, {}
        for m, (path, _) in enumerate(found):
            if len(path) == 4 and path[1] == "evses" and path[3] in ("status", "parkingsensor_status"):
                (cp_status if path[3] == "status" else park)[evse_row[path[0], path[2]]] = m
            elif len(path) == 6 and path[1] == "evses" and path[3] == "connectors" and path[5] == "status":
                conn_status[conn_row[path[0], path[2], path[4]]] = conn_value[path[0], path[2], path[4]] = m
            else:
                return None  # e.g. a station's or operator's status: it may flow into master data
        shape.cp_status_rows, shape.park_rows, shape.conn_status_rows = (
            np.array(list(rows_of), dtype=np.intp) for rows_of in (cp_status, park, conn_status)
        )
        shape.pick_cp, shape.pick_park, shape.pick_conn = (
            _picker(list(p.values())) for p in (cp_status, park, conn_status)
        )
        shape.pick_statuses = _picker([*cp_status.values(), *conn_status.values()])

        shape.quarantined = []
        for rule, level, record_id, reason, record in captured:
            index = None
            if rule == "ratings":  # the connector as it came: its text holds its status
                if id(record) not in conn_of:
                    return None
                index = conn_value.get(conn_of[id(record)])
            text = record_json(record)
            shape.quarantined.append((rule, level, record_id, reason, text, record, index, values[index] if index is not None else None))

        shape.reported = dict.fromkeys((row[4] for row in cp_rows), city)
        shape.reported_connectors = dict.fromkeys((repr(row[4:6]) for row in conn_rows), city)
        shape.master, shape.versions = {}, {}
        for added, (name, keys) in zip(master_rows, MASTER_KEYS.items()):
            cols = tables.columns(TABLE_OF[name])
            positions = [cols.index(k) for k in keys]
            shape.master[name] = [row[:-2] for row in added]  # without first/last seen
            shape.versions[name] = [tuple(row[p] for p in positions) for row in shape.master[name]]
        return shape

    def matches(self, segments: list[bytes]) -> bool:
        return segments == self.segments

    def ready(self, rows: RowCollector, values: list[bytes]) -> bool:
        """Whether an answer with these status values gives the learnt tables: every status is one of the
        vocabulary as `_status` returns it, and no charging point or connector of the city was reported by
        another city in this poll (else the full path quarantines it)."""
        return (
            (_STATUS_SET.issuperset(values) or _STATUS_SET.issuperset(self.pick_statuses(values)))
            and not rows.reported_elsewhere(self.reported, self.reported_connectors)
        )

    def apply(self, rows: RowCollector, city: str, poll_time: datetime, values: list[bytes]) -> None:
        """The city's rows of this poll: the learnt ones with these status values."""
        time_ns = _ns(poll_time)
        code = rows.strings.of_bytes.__getitem__
        rows.add_status_block("status_chargingpoints", len(self.cp_ids), [
            rows.slot_ns, time_ns, self.city, self.cp_station, self.cp_ids, self.cp_uids,
            self._filled(self.cp_status, self.cp_status_rows, map(code, self.pick_cp(values))),
            self._filled(self.cp_park, self.park_rows, map(code, self.pick_park(values))),
        ])
        rows.add_status_block("status_connectors", len(self.conn_ids), [
            rows.slot_ns, time_ns, self.city, self.conn_station, self.conn_cp, self.conn_ids,
            self._filled(self.conn_status, self.conn_status_rows, map(code, self.pick_conn(values))),
        ])
        rows.claim_reports(self.reported, self.reported_connectors)
        for rule, level, record_id, reason, text, record, index, learnt in self.quarantined:
            if index is not None and values[index] != learnt:
                text = record_json({**record, "status": _text_of(values[index])})
            rows.quarantine_text(rule, level, record_id, reason, text)
        rows.reused(self, self.master, poll_time)

    @staticmethod
    def _filled(learnt: np.ndarray, rows: np.ndarray, codes: Iterable[int]) -> np.ndarray:
        """The column `learnt` with these codes put in at `rows` (all of it, most of the time)."""
        if not len(rows):
            return learnt
        codes = np.fromiter(codes, np.int32, len(rows))
        if len(rows) == len(learnt):
            return codes
        column = learnt.copy()
        column[rows] = codes
        return column

    def fold_seen(self, versions: dict[str, dict[tuple, tuple]], first: datetime, last: datetime) -> None:
        """Widen first/last seen of this shape's master-data versions by the polls that reused it."""
        for name, keys in self.versions.items():
            table = versions[name]
            for key in keys:
                old = table[key]
                table[key] = (*old[:-2], min(old[-2], first), max(old[-1], last))
