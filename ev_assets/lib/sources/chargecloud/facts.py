"""The status facts of flattened polls, kept by column: times as ns since the epoch, text as codes of one shared
string table, so a day of polls holds each id or status once however many rows it has."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from ev_assets.lib import tables
from ev_assets.lib.sources.chargecloud.slots import _EPOCH

_FACTS = ("status_chargingpoints", "status_connectors")
_NAT = np.iinfo(np.int64).min  # NaT as datetime64[ns]
_MICROSECOND = timedelta(microseconds=1)


def _ns(t: datetime) -> int:
    """A UTC datetime as nanoseconds since the epoch (exact: datetimes hold microseconds)."""
    return (t - _EPOCH) // _MICROSECOND * 1000


class _Strings(dict):
    """Text -> its code (None is 0), for the status facts: each id or status is one object, however many rows."""

    def __init__(self):
        super().__init__({None: 0})
        self.texts: list[str | None] = [None]
        self.of_bytes = _BytesCodes(self)  # a raw status value -> the code of its text

    def __missing__(self, text: str) -> int:
        self[text] = code = len(self.texts)
        self.texts.append(text)
        return code


class _BytesCodes(dict):
    """A raw status value (ASCII letters, see `_STATUS_VALUE`) -> the `_Strings` code of its text."""

    def __init__(self, strings: _Strings):
        super().__init__()
        self.strings = strings

    def __missing__(self, raw: bytes) -> int:
        self[raw] = code = self.strings[raw.decode("ascii")]
        return code


class _Facts:
    """One status table as blocks of rows, in order, kept by column: a city shape's block gives poll_slot, poll_time
    and city_slug as one value each (`_SCALARS`) and the other columns as arrays; the full path's blocks give arrays
    only. Times are ns since the epoch, text `_Strings` codes."""

    def __init__(self, name: str, strings: _Strings):
        self.name = name
        self.strings = strings
        self.counts: list[int] = []
        self.columns: list[list] = [[] for _ in tables.TABLES[name]]
        self.array_blocks: list[int] = []  # blocks that give every column as an array
        self._built: list[np.ndarray] | None = None

    def add(self, n: int, columns: list, arrays: bool = False) -> None:
        if not n:
            return
        self._built = None
        if arrays:
            self.array_blocks.append(len(self.counts))
        self.counts.append(n)
        for column, part in zip(self.columns, columns):
            column.append(part)

    def add_rows(self, rows: list[tuple]) -> None:
        """Rows as tuples in `lib.tables` column order (datetimes, text or None)."""
        code = self.strings.__getitem__
        columns = [
            np.fromiter(map(_ns if typ == "TIMESTAMPTZ" else code, values), np.int64 if typ == "TIMESTAMPTZ" else np.int32, len(rows))
            for (_, typ), values in zip(tables.TABLES[self.name], zip(*rows))
        ]
        self.add(len(rows), columns, arrays=True)

    def _columns(self) -> list[np.ndarray]:
        """Each column as one array: ns since the epoch, or text codes."""
        if self._built is None:
            self._built = self._build()
        return self._built

    def _build(self) -> list[np.ndarray]:
        counts = np.array(self.counts, dtype=np.int64)
        starts = np.cumsum(counts) - counts
        columns = []
        for i, ((_, typ), parts) in enumerate(zip(tables.TABLES[self.name], self.columns)):
            dtype = np.int64 if typ == "TIMESTAMPTZ" else np.int32
            if not parts:
                values = np.empty(0, dtype)
            elif i < _SCALARS and len(self.array_blocks) < len(parts):  # one value per shape block, repeated
                scalars = list(parts)
                for k in self.array_blocks:
                    scalars[k] = 0
                values = np.repeat(np.array(scalars, dtype), counts)
                for k in self.array_blocks:
                    values[starts[k]:starts[k] + counts[k]] = parts[k]
            else:
                values = np.concatenate(parts)
            columns.append(values)
        return columns

    def frame(self) -> pd.DataFrame:
        """The table, typed exactly as `tables.frame` types its rows (object columns of str and None)."""
        texts = np.array(self.strings.texts, dtype=object)
        data = {
            col: pd.DatetimeIndex(values.view("M8[ns]")).tz_localize("UTC") if typ == "TIMESTAMPTZ" else texts[values]
            for (col, typ), values in zip(tables.TABLES[self.name], self._columns())
        }
        return pd.DataFrame(data, columns=tables.columns(self.name), copy=False)

    def arrow_frame(self) -> pd.DataFrame:
        """The table with the same values as `frame`, its text as Arrow dictionary arrays (no object per row)."""
        dictionary = pa.array(["" if text is None else text for text in self.strings.texts], pa.string())
        data = {}
        for (col, typ), values in zip(tables.TABLES[self.name], self._columns()):
            if typ == "TIMESTAMPTZ":
                array = pa.array(values, pa.timestamp("ns", tz="UTC"))
            else:  # code 0 is NULL
                array = pa.DictionaryArray.from_arrays(pa.array(values, mask=values == 0), dictionary)
            data[col] = pd.arrays.ArrowExtensionArray(array)
        return pd.DataFrame(data, columns=tables.columns(self.name), copy=False)


_SCALARS = 3  # poll_slot, poll_time, city_slug: the first columns of both status tables
