"""Load: the simulated fleet's raw tables written straight into DuckDB (stands in for ingestion, reported apart)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd


class Loader:
    """Writes the raw chargecloud tables of `ev_assets.lib.tables` for the simulated fleet, a UTC day at a time.

    Status rows come from `day_status` (vectorised); ids, cities and poll times are joined on in DuckDB from
    small lookup tables, so no per-row Python runs. poll_time is the city's answer time as the simulated
    endpoint reports it (a few seconds after the slot, per city), as ingestion stores it.
    """

    def __init__(self, sim, days: list[date]):
        from ev_assets.lib.settings import CHARGECLOUD_CITIES
        from ev_assets.lib.simulator import build_fleet

        self.sim = sim
        self.days = days
        self.fleet = build_fleet(sim)
        self.cities = list(sim.cities)
        self.city_order = {c: CHARGECLOUD_CITIES.index(c) for c in self.cities}
        st = self.fleet.stations
        cp = self.fleet.charging_points
        cn = self.fleet.connectors
        city_idx = {c: i for i, c in enumerate(self.cities)}
        self.points = pd.DataFrame({
            "pidx": np.arange(len(cp), dtype=np.int32),
            "city_idx": cp["city_slug"].map(city_idx).to_numpy(np.int16),
            "city_slug": cp["city_slug"].to_numpy(object),
            "station_id": cp["station_id"].to_numpy(object),
            "charging_point_id": cp["charging_point_id"].to_numpy(object),
            "evse_uid": cp["evse_uid"].to_numpy(object),
            "parking_sensor": cp["parking_sensor"].to_numpy(bool),
        })
        self.connectors = pd.DataFrame({
            "pidx": np.arange(len(cn), dtype=np.int32),
            "city_idx": cn["city_slug"].map(city_idx).to_numpy(np.int16),
            "city_slug": cn["city_slug"].to_numpy(object),
            "station_id": cn["station_id"].to_numpy(object),
            "charging_point_id": cn["charging_point_id"].to_numpy(object),
            "connector_id": cn["connector_id"].to_numpy(object),
        })
        self.n_stations = len(st)

    # --- poll times ------------------------------------------------------------------------------------
    def poll_times(self, day: date) -> pd.DataFrame:
        """(slot, city_idx, poll_time) for the 144 slots of `day`: `response_timestamp` vectorised."""
        from ev_assets.lib.simulator import POLL_INTERVAL_S, SLOTS_PER_DAY
        from ev_assets.lib.simulator._rng import stable_key, uniform

        keys = np.array([stable_key(self.sim.seed, "answer", c) for c in self.cities], dtype=np.uint64)
        order = np.array([self.city_order[c] for c in self.cities], dtype=float)
        midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        base = int(midnight.timestamp())
        slots, cities, offsets = [], [], []
        for k in range(SLOTS_PER_DAY):
            ts = base + int(k * POLL_INTERVAL_S)
            jitter = uniform(keys, ts)
            slots.append(np.full(len(keys), ts, dtype=np.int64))
            cities.append(np.arange(len(keys), dtype=np.int16))
            offsets.append(np.floor(1.0 + 0.15 * order + jitter).astype(np.int64))  # answer truncated to seconds
        slot_s = np.concatenate(slots)
        return pd.DataFrame({
            "slot": pd.to_datetime(slot_s, unit="s", utc=True),
            "city_idx": np.concatenate(cities),
            "poll_time": pd.to_datetime(slot_s + np.concatenate(offsets), unit="s", utc=True),
        })

    # --- master data -----------------------------------------------------------------------------------
    def master_frames(self) -> dict[str, pd.DataFrame]:
        """Stations, charging points and connectors as ingestion flattens them (one poll, through the real
        flattener), each seen from its city's first to its last poll of the range."""
        from ev_assets.lib.sources import chargecloud
        from ev_assets.lib.simulator import chargecloud_poll

        first_slot = datetime(self.days[0].year, self.days[0].month, self.days[0].day, tzinfo=timezone.utc)
        flat = chargecloud.flatten_poll(chargecloud_poll(self.sim, first_slot), first_slot, "benchmark")
        first = self.poll_times(self.days[0]).groupby("city_idx")["poll_time"].min()
        last = self.poll_times(self.days[-1]).groupby("city_idx")["poll_time"].max()
        city_idx = {c: i for i, c in enumerate(self.cities)}
        station_city = dict(zip(self.fleet.stations["station_id"], self.fleet.stations["city_slug"].map(city_idx)))
        frames = {}
        for name, frame in (("chargingstations", flat.stations), ("chargingpoints", flat.charging_points),
                            ("connectors", flat.connectors)):
            frame = frame.copy()
            ci = frame["station_id"].map(station_city)
            frame["first_seen_at"] = ci.map(first).to_numpy()
            frame["last_seen_at"] = ci.map(last).to_numpy()
            frames[name] = frame
        return frames

    # --- writing ---------------------------------------------------------------------------------------
    def connect(self, path: Path, memory_limit: str) -> duckdb.DuckDBPyConnection:
        from ev_assets.lib import tables

        con = duckdb.connect(str(path))
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {tables.SCHEMA}")
        for name in tables.TABLES:  # every raw table exists, as after ingestion: dbt finds all its sources
            con.execute(tables.ddl(name))
        con.register("bench_points_df", self.points)
        con.register("bench_connectors_df", self.connectors)
        con.execute("CREATE OR REPLACE TEMP TABLE bench_points AS SELECT * FROM bench_points_df")
        con.execute("CREATE OR REPLACE TEMP TABLE bench_connectors AS SELECT * FROM bench_connectors_df")
        con.unregister("bench_points_df")
        con.unregister("bench_connectors_df")
        return con

    def write_master(self, con: duckdb.DuckDBPyConnection) -> int:
        from ev_assets.lib import tables

        n = 0
        for name, frame in self.master_frames().items():
            cols = tables.columns(name)
            con.register("_frame", frame[cols])
            con.execute(f"INSERT INTO raw.{name} SELECT {', '.join(cols)} FROM _frame")
            con.unregister("_frame")
            n += len(frame)
        return n

    @staticmethod
    def _indexed(status: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
        """day_status frame -> (slot, item index, status); day_status is slot-major in fleet order."""
        n = len(ids)
        item = status["item_id"].to_numpy()
        if len(item) % n == 0 and (item[:n] == ids).all() and (item[-n:] == ids).all():
            idx = np.tile(np.arange(n, dtype=np.int32), len(item) // n)
        else:  # not the documented layout: look the ids up
            idx = pd.Index(ids).get_indexer(item).astype(np.int32)
        return pd.DataFrame({"slot": status["slot"].array, "pidx": idx,
                             "status": pd.Categorical(status["status"])})

    def write_day(self, con: duckdb.DuckDBPyConnection, day: date) -> tuple[int, int]:
        """Status rows of both levels and the poll log of one UTC day; returns (charging point, connector) rows."""
        from ev_assets.lib.simulator import day_status

        cp = self._indexed(day_status(self.sim, day, "charging_point"),
                           self.points["charging_point_id"].to_numpy(object))
        cn = self._indexed(day_status(self.sim, day, "connector"), self.connectors["connector_id"].to_numpy(object))
        polls = self.poll_times(day)
        con.register("_cp", cp)
        con.register("_cn", cn)
        con.register("_polls", polls)
        try:
            con.execute("BEGIN TRANSACTION")
            con.execute("""
                INSERT INTO raw.status_chargingpoints
                SELECT s.slot, t.poll_time, p.city_slug, p.station_id, p.charging_point_id, p.evse_uid,
                       CAST(s.status AS VARCHAR),
                       CASE WHEN p.parking_sensor THEN
                           CASE WHEN s.status IN ('CHARGING', 'BLOCKED') THEN 'OCCUPIED' ELSE 'AVAILABLE' END END
                FROM _cp s
                JOIN bench_points p ON p.pidx = s.pidx
                JOIN _polls t ON t.slot = s.slot AND t.city_idx = p.city_idx
                ORDER BY s.slot, s.pidx""")
            con.execute("""
                INSERT INTO raw.status_connectors
                SELECT s.slot, t.poll_time, c.city_slug, c.station_id, c.charging_point_id, c.connector_id,
                       CAST(s.status AS VARCHAR)
                FROM _cn s
                JOIN bench_connectors c ON c.pidx = s.pidx
                JOIN _polls t ON t.slot = s.slot AND t.city_idx = c.city_idx
                ORDER BY s.slot, s.pidx""")
            con.execute("""
                INSERT INTO raw.chargecloud_poll_log
                WITH n AS (
                    SELECT city_idx, any_value(city_slug) AS city_slug, count(DISTINCT station_id) AS stations,
                           count(*) AS points
                    FROM bench_points GROUP BY city_idx
                ), c AS (SELECT city_idx, count(*) AS connectors FROM bench_connectors GROUP BY city_idx)
                SELECT t.slot, n.city_slug, t.poll_time, true, NULL, n.stations, n.points, c.connectors,
                       'benchmark'
                FROM _polls t JOIN n USING (city_idx) JOIN c USING (city_idx)
                ORDER BY t.slot, t.city_idx""")
            con.execute("COMMIT")
        finally:
            for name in ("_cp", "_cn", "_polls"):
                con.unregister(name)
        return len(cp), len(cn)


