from datetime import datetime, timezone

import duckdb
import pandas as pd

from ev_assets.lib import tables, warehouse

T0 = datetime(2022, 1, 10, 8, 0, tzinfo=timezone.utc)
T1 = datetime(2022, 1, 10, 8, 10, tzinfo=timezone.utc)


def _status(slot, ids):
    return pd.DataFrame(
        {
            "poll_slot": slot, "poll_time": slot, "city_slug": "koeln", "station_id": "1",
            "charging_point_id": ids, "evse_uid": ids, "status": "AVAILABLE", "parkingsensor_status": None,
        }
    )[tables.columns("status_chargingpoints")]


def test_reloading_a_partition_replaces_it(data_dir):
    with warehouse.connect(data_dir / "w.duckdb") as con:
        where = "poll_slot >= ? AND poll_slot < ?"
        warehouse.replace_rows(con, "status_chargingpoints", _status(T0, ["a", "b"]), where, (T0, T1))
        warehouse.replace_rows(con, "status_chargingpoints", _status(T1, ["a"]), where, (T1, T1.replace(minute=20)))
        warehouse.replace_rows(con, "status_chargingpoints", _status(T0, ["a", "b"]), where, (T0, T1))
        assert warehouse.count(con, "status_chargingpoints") == 3
        assert con.execute("SELECT typeof(poll_slot) FROM raw.status_chargingpoints LIMIT 1").fetchone()[0] == "TIMESTAMP WITH TIME ZONE"


def _connector(power, seen):
    row = {c: None for c in tables.columns("connectors")}
    row.update(connector_id="c1", charging_point_id="p1", station_id="s1", max_power_kw=power,
               attr_hash=f"h{power}", first_seen_at=seen, last_seen_at=seen)
    return row


def test_master_data_keeps_one_row_per_version(data_dir):
    with warehouse.connect(data_dir / "w.duckdb") as con:
        batch = pd.DataFrame([_connector(22, T0), _connector(22, T1)])
        assert warehouse.upsert_versions(con, "connectors", batch, ["connector_id"]) == 1
        assert warehouse.upsert_versions(con, "connectors", batch, ["connector_id"]) == 0  # re-run: nothing new
        later = T1.replace(hour=9)
        assert warehouse.upsert_versions(con, "connectors", pd.DataFrame([_connector(11, later)]), ["connector_id"]) == 1
        rows = con.execute(
            "SELECT max_power_kw, first_seen_at, last_seen_at FROM raw.connectors ORDER BY first_seen_at"
        ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [(22.0, T0, T1), (11.0, later, later)]


def test_a_raw_table_made_by_an_older_version_gains_the_new_columns(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    old = [(c, t) for c, t in tables.TABLES["acn_sessions"] if not c.startswith("first_")]
    con = duckdb.connect(str(path))
    con.execute(f"CREATE SCHEMA {tables.SCHEMA}")
    con.execute(f"CREATE TABLE {tables.SCHEMA}.acn_sessions ({', '.join(f'{c} {t}' for c, t in old)})")
    con.execute(f"INSERT INTO {tables.SCHEMA}.acn_sessions (session_id) VALUES ('kept')")
    con.close()
    with warehouse.connect(path) as con:
        columns = [r[0] for r in con.execute(f"DESCRIBE {tables.SCHEMA}.acn_sessions").fetchall()]
        rows = con.execute(f"SELECT session_id, first_kwh_requested FROM {tables.SCHEMA}.acn_sessions").fetchall()
    assert {"first_kwh_requested", "first_minutes_available", "first_input_at"} <= set(columns)
    assert rows == [("kept", None)]  # the old rows stay, with NULL in the new columns
