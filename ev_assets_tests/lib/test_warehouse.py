from datetime import datetime, timezone

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


def test_a_raw_table_of_an_older_version_gains_the_new_columns_and_keeps_its_rows(data_dir):
    """A data root made before raw.ocm_stations had `first_pulled_at`: opening the warehouse adds the column
    (empty in the old rows) and the new rows load."""
    import duckdb

    path = data_dir / "warehouse.duckdb"
    old = [(c, t) for c, t in tables.TABLES["ocm_stations"] if c != "first_pulled_at"]
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute(f"CREATE TABLE raw.ocm_stations ({', '.join(f'{c} {t}' for c, t in old)})")
        con.execute("INSERT INTO raw.ocm_stations (ocm_id, title) VALUES (1, 'old row')")
    row = {c: None for c in tables.columns("ocm_stations")}
    row.update(ocm_id=2, title="new row", first_pulled_at="2026-01-01T00:00:00Z")
    with warehouse.connect(path) as con:
        warehouse.replace_rows(con, "ocm_stations", tables.frame("ocm_stations", [row]), "ocm_id = 2")
        got = con.execute("SELECT ocm_id, title, first_pulled_at IS NULL FROM raw.ocm_stations ORDER BY 1").fetchall()
    assert got == [(1, "old row", True), (2, "new row", False)]
