"""The session logic in plain pandas (run in a child process of the benchmark, so its peak RSS is its own)."""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from bench.config import GAP_MULTIPLE, PANDAS_READER_MEMORY, POLL_MINUTES


def _runs_streaming(con, table: str, id_col: str, start: date, end: date, chunk_days: int) -> dict:
    """Runs of equal status per item of raw.`table`, `chunk_days` UTC days of polls at a time.

    Same rules as the dbt models: status cleaned (trim, upper, empty -> UNKNOWN), one poll per (item, poll time)
    (the earliest slot), a run of equal status ends at a change or a gap longer than GAP_MULTIPLE x the poll
    interval. The last run of each item is carried into the next chunk, where the item's first run continues it
    (same status, gap within the limit) or its first poll ends it. Returns the number of runs, the CHARGING runs
    (item, start, last poll, polls, next poll of the item), the rows read, the latest poll and the read time.
    """
    gap = pd.Timedelta(minutes=POLL_MINUTES * GAP_MULTIPLE)
    cols = ["item", "status", "start", "last", "n", "next"]
    carry = None  # the last run of each item so far: item, status, start, last, n
    kept: list[pd.DataFrame] = []  # finished CHARGING runs
    n_runs = rows = 0
    latest = None
    read_s = 0.0
    day = start
    while day < end:
        stop = min(day + timedelta(days=chunk_days), end)
        r0 = time.perf_counter()
        df = con.sql(
            f"SELECT {id_col} AS item, poll_time, poll_slot, status FROM raw.{table} "
            f"WHERE poll_time >= TIMESTAMPTZ '{day} 00:00:00+00' AND poll_time < TIMESTAMPTZ '{stop} 00:00:00+00'"
        ).to_arrow_table().to_pandas(strings_to_categorical=True)
        read_s += time.perf_counter() - r0
        day = stop
        rows += len(df)
        if df.empty:
            continue
        # cleaning as the staging views do, on the categories (a handful of values)
        clean = {c: (str(c).strip().upper() or "UNKNOWN") for c in df["status"].cat.categories}
        df["status"] = df["status"].map(clean).astype("category")
        if df["status"].isna().any():
            df["status"] = df["status"].cat.add_categories(["UNKNOWN"]).fillna("UNKNOWN")
        # one poll per (item, poll time): the earliest slot, as the staging views' row_number()
        df = df.sort_values(["item", "poll_time", "poll_slot", "status"])
        df = df.drop_duplicates(["item", "poll_time"], keep="first")
        chunk_latest = df["poll_time"].max()
        latest = chunk_latest if latest is None else max(latest, chunk_latest)

        # a run starts at an item's first poll, at a change of status, or after a gap over the limit
        same_item = df["item"].eq(df["item"].shift())
        new_run = ~same_item | df["status"].ne(df["status"].shift()) | (df["poll_time"] - df["poll_time"].shift() > gap)
        runs = df.groupby(new_run.cumsum(), sort=False).agg(
            item=("item", "first"), status=("status", "first"), start=("poll_time", "min"),
            last=("poll_time", "max"), n=("poll_time", "size")).reset_index(drop=True)
        runs["item"] = runs["item"].astype(str)
        runs["status"] = runs["status"].astype(str)
        runs["next"] = runs["start"].shift(-1).where(runs["item"].eq(runs["item"].shift(-1)))
        del df, same_item, new_run

        if carry is not None:
            first = runs.drop_duplicates("item", keep="first")
            joined = carry.merge(first[["item", "status", "start"]].rename(columns={"status": "status_new",
                                                                               "start": "start_new"}),
                                 on="item", how="left")
            continues = joined["status"].eq(joined["status_new"]) & (joined["start_new"] - joined["last"] <= gap)
            # the chunk's first run continues the carried run: it starts earlier and has its polls too
            cont = joined[continues].set_index("item")
            hit = np.zeros(len(runs), dtype=bool)
            hit[runs.index.get_indexer(first.index[first["item"].isin(cont.index)])] = True
            runs.loc[hit, "n"] = runs.loc[hit, "n"].to_numpy() + runs.loc[hit, "item"].map(cont["n"]).to_numpy()
            runs.loc[hit, "start"] = runs.loc[hit, "item"].map(cont["start"]).to_numpy()
            # the carried run ended before this chunk: the item's first poll here is its next poll
            ended = joined[~continues & joined["start_new"].notna()].assign(next=lambda f: f["start_new"])
            n_runs += len(ended)
            kept.append(ended.loc[ended["status"] == "CHARGING", cols])
            # items without a poll in this chunk keep their run open
            idle = joined.loc[joined["start_new"].isna(), cols[:-1]]
        else:
            idle = None
        is_last = runs["next"].isna().to_numpy()
        done = runs[~is_last]
        n_runs += len(done)
        kept.append(done.loc[done["status"] == "CHARGING", cols])
        carry = runs.loc[is_last, cols[:-1]]
        if idle is not None and len(idle):
            carry = pd.concat([carry, idle], ignore_index=True)
        del runs

    if carry is not None:
        n_runs += len(carry)
        kept.append(carry.loc[carry["status"] == "CHARGING"].assign(next=pd.NaT)[cols])
    charging = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=cols)
    return {"runs": n_runs, "charging": charging, "rows": rows, "latest": latest, "read_seconds": read_s}


def pandas_sessions(warehouse: Path, start: date, end: date, chunk_days: int, levels: str) -> dict:
    """Charging sessions from the raw charging-point polls in plain pandas (and, with levels='both', the runs of
    the connectors too, which dbt's int_status_intervals also computes).

    A session is a CHARGING run of a charging point; it ends at its last poll + one poll interval, or at the
    point's next poll when that is sooner; it is open when it has no next poll and its last poll is within the
    gap limit of the latest poll.
    """
    interval = pd.Timedelta(minutes=POLL_MINUTES)
    gap = pd.Timedelta(minutes=POLL_MINUTES * GAP_MULTIPLE)
    t0 = time.perf_counter()
    con = duckdb.connect(str(warehouse), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    # DuckDB keeps the blocks it read cached up to its memory_limit (default 80% of RAM): cap it, so the peak RSS
    # is the pandas working set and not a cache of the whole file
    con.execute(f"SET memory_limit = '{PANDAS_READER_MEMORY}'")
    cp = _runs_streaming(con, "status_chargingpoints", "charging_point_id", start, end, chunk_days)
    cn = _runs_streaming(con, "status_connectors", "connector_id", start, end, chunk_days) if levels == "both" else None
    con.close()
    latest = cp["latest"] if cn is None or cn["latest"] is None else max(cp["latest"], cn["latest"])
    sessions = cp["charging"]
    end_at = sessions["last"] + interval
    sessions["end"] = end_at.where(sessions["next"].isna() | (end_at <= sessions["next"]), sessions["next"])
    sessions["duration_minutes"] = (sessions["end"] - sessions["start"]).dt.total_seconds() / 60.0
    sessions["is_open"] = sessions["next"].isna() & ((latest - sessions["last"]) <= gap)
    return {
        "seconds": time.perf_counter() - t0,
        "read_seconds": cp["read_seconds"] + (cn["read_seconds"] if cn else 0.0),
        "rows": cp["rows"] + (cn["rows"] if cn else 0),
        "levels": levels,
        "runs_charging_point": cp["runs"],
        "runs_connector": cn["runs"] if cn else None,
        "sessions": int(len(sessions)),
        "session_minutes": float(sessions["duration_minutes"].sum()),
        "session_polls": int(sessions["n"].sum()),
        "open_sessions": int(sessions["is_open"].sum()),
    }


