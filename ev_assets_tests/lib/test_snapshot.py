"""The marts snapshot: publish, swap, retention, and the service answering while a warehouse run holds the file.

DuckDB lets one process write a database file and then no other process open it, not even read-only. The
service therefore reads only the snapshots that `snapshot.publish` copies out of the warehouse. The last tests
run a real second process that holds `warehouse.duckdb` read-write and keeps writing to it (as dbt does during a
warehouse run), and show that opening the warehouse from the service's process fails then, while the KPI
endpoints on the snapshot keep answering.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from ev_assets.lib import snapshot
from ev_assets_tests.fixtures.kpi_marts import build_warehouse, make_app


def small_warehouse(path: Path, value: int) -> Path:
    """A warehouse with two marts (one a view), a staging and a raw table; `value` marks the publish."""
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS marts; CREATE SCHEMA IF NOT EXISTS raw")
        con.execute("CREATE OR REPLACE TABLE marts.mart_a AS SELECT ? AS value, range AS i FROM range(3)", [value])
        con.execute("CREATE OR REPLACE TABLE raw.source AS SELECT 1 AS x")
        con.execute("CREATE OR REPLACE VIEW marts.mart_b AS SELECT value * 10 AS tenfold FROM marts.mart_a LIMIT 1")
    finally:
        con.close()
    return path


def read_value(reader: snapshot.Reader) -> int:
    with reader.connect() as con:
        return con.execute("SELECT max(value) FROM marts.mart_a").fetchone()[0]


def test_publish_copies_the_marts_and_points_current_at_them(tmp_path):
    warehouse = small_warehouse(tmp_path / "warehouse.duckdb", 1)
    snaps = tmp_path / "snapshots"
    assert snapshot.current(snaps) is None

    published = snapshot.publish(warehouse, snaps)
    assert published.parent == snaps and published.name.startswith("marts-") and published.suffix == ".duckdb"
    assert (snaps / "CURRENT").read_text().strip() == published.name
    assert snapshot.current(snaps) == published
    assert sorted(p.name for p in snaps.iterdir()) == sorted(["CURRENT", published.name])  # no temp file left

    reader = snapshot.Reader(snaps)
    with reader.connect() as con:
        tables = con.execute(
            "SELECT table_schema, table_name, table_type FROM information_schema.tables ORDER BY 1, 2"
        ).fetchall()
        # the view became a table with its rows; raw stayed behind
        assert tables == [("marts", "mart_a", "BASE TABLE"), ("marts", "mart_b", "BASE TABLE")]
        assert con.execute("SELECT tenfold FROM marts.mart_b").fetchall() == [(10,)]
        assert con.execute("SELECT count(*) FROM marts.mart_a").fetchone()[0] == 3
        with pytest.raises(duckdb.Error):  # read-only
            con.execute("INSERT INTO marts.mart_a VALUES (5, 5)")
    assert reader.name == published.name


def test_readers_switch_to_a_new_publish_and_open_cursors_keep_theirs(tmp_path):
    warehouse, snaps = tmp_path / "warehouse.duckdb", tmp_path / "snapshots"
    snapshot.publish(small_warehouse(warehouse, 1), snaps)
    reader = snapshot.Reader(snaps)
    old = reader.connect()
    assert old.execute("SELECT max(value) FROM marts.mart_a").fetchone()[0] == 1

    snapshot.publish(small_warehouse(warehouse, 2), snaps)
    assert read_value(reader) == 2  # a new connection sees the new snapshot, without a restart
    assert old.execute("SELECT max(value) FROM marts.mart_a").fetchone()[0] == 1  # the open one keeps its own
    old.close()


def test_only_the_newest_three_snapshots_stay_and_open_readers_survive_deletion(tmp_path):
    warehouse, snaps = tmp_path / "warehouse.duckdb", tmp_path / "snapshots"
    reader = snapshot.Reader(snaps)
    published = []
    snapshot.publish(small_warehouse(warehouse, 0), snaps)
    first = reader.connect()
    for value in range(1, 6):
        published.append(snapshot.publish(small_warehouse(warehouse, value), snaps))
    kept = sorted(p.name for p in snaps.glob("marts-*.duckdb"))
    assert kept == [p.name for p in published[-3:]]
    assert published == sorted(published)  # names sort by publish time
    assert read_value(reader) == 5
    # the first snapshot's file is gone, yet the cursor opened on it still reads it
    assert first.execute("SELECT max(value) FROM marts.mart_a").fetchone()[0] == 0
    first.close()


def test_no_snapshot_says_what_to_run(tmp_path):
    reader = snapshot.Reader(tmp_path / "snapshots")
    with pytest.raises(snapshot.NoSnapshot, match="make demo"):
        reader.connect()
    (tmp_path / "snapshots").mkdir()
    (tmp_path / "snapshots" / "CURRENT").write_text("marts-20220101T000000000000Z.duckdb\n")  # names a lost file
    assert snapshot.current(tmp_path / "snapshots") is None
    with pytest.raises(snapshot.NoSnapshot, match="warehouse job"):
        reader.connect()


def test_a_failed_publish_leaves_the_current_snapshot_alone(tmp_path):
    warehouse, snaps = tmp_path / "warehouse.duckdb", tmp_path / "snapshots"
    good = snapshot.publish(small_warehouse(warehouse, 1), snaps)
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    with pytest.raises(ValueError, match="no relation in schema 'marts'"):
        snapshot.publish(empty, snaps)
    with pytest.raises(FileNotFoundError):
        snapshot.publish(tmp_path / "missing.duckdb", snaps)
    assert snapshot.current(snaps) == good
    assert sorted(p.name for p in snaps.iterdir()) == sorted(["CURRENT", good.name])


# --- the service during a warehouse run --------------------------------------------------------------------------
WRITER = textwrap.dedent(
    """
    import pathlib, sys, time
    import duckdb

    path, stop = sys.argv[1], pathlib.Path(sys.argv[2])
    con = duckdb.connect(path)  # read-write: holds the file lock until it closes
    con.execute("CREATE TABLE IF NOT EXISTS raw.writes (i INTEGER)")
    # like dbt rebuilding a mart: every daily total of U1 grows by 1 kWh
    con.execute("UPDATE marts.mart_energy_daily SET energy_kwh = energy_kwh + 1 WHERE entity_id = 'U1'")
    print("holding", flush=True)
    written, deadline = 0, time.monotonic() + 120
    while not stop.exists() and time.monotonic() < deadline:
        con.execute("INSERT INTO raw.writes VALUES (?)", [written])
        written += 1
        if written % 100 == 0:
            con.execute("CHECKPOINT")
        time.sleep(0.002)
    con.close()
    print(written, flush=True)
    """
)

QUERIES = {  # a KPI of every kind, with what the published snapshot answers
    "/kpi/energy/total?user_id=U1": ("energy_kwh", 36.0),
    "/kpi/energy/last-7-days": ("energy_kwh", 87.0),
    "/kpi/utilization/cities": (0, "city_slug", "bonn"),
    "/kpi/reliability/stations/S1": (0, "failures", 1),
    "/kpi/users/U1/hourly-loads": (0, "session_ids", ["s1"]),
}


def _check(body, expected) -> None:
    *index, field, value = expected
    item = body[index[0]] if index else body
    assert item[field] == value


def _published(tmp_path):
    """A data root holding the KPI tests' warehouse, its published snapshot and a client of the KPI router on it."""
    root = tmp_path / "data"
    root.mkdir()
    warehouse = build_warehouse(root / "warehouse.duckdb")
    snaps = root / "serving" / "snapshots"
    snapshot.publish(warehouse, snaps)
    return root, warehouse, snaps, TestClient(make_app(snaps, root))


def test_the_service_answers_while_a_warehouse_run_holds_the_file(tmp_path):
    root, warehouse, snaps, client = _published(tmp_path)
    for url, expected in QUERIES.items():  # warm: the reader has the snapshot open before the run starts
        _check(client.get(url).json(), expected)

    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(warehouse), str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "holding", writer.stderr.read()
        # what the design avoids: the warehouse cannot even be opened read-only from here now
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(warehouse), read_only=True)

        # meanwhile the KPI endpoints answer from the snapshot, from several threads at once
        failures: list[str] = []
        answered = [0]

        def hammer():
            for _ in range(25):
                for url, expected in QUERIES.items():
                    response = client.get(url)
                    try:
                        assert response.status_code == 200, response.text
                        _check(response.json(), expected)
                        answered[0] += 1
                    except AssertionError as error:
                        failures.append(f"{url}: {error}")

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert writer.poll() is None, "the writer stopped before the requests ended: the test proved nothing"
        with pytest.raises(duckdb.IOException, match="lock"):  # still held after all those requests
            duckdb.connect(str(warehouse), read_only=True)
    finally:
        stop.touch()
        out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert int(out.strip()) > 0  # it really wrote while the service answered
    assert failures == [] and answered[0] == 4 * 25 * len(QUERIES)

    # the run is over: the warehouse job publishes, and the service answers with the new marts, no restart
    snapshot.publish(warehouse, snaps)
    assert client.get("/kpi/energy/total?user_id=U1").json()["energy_kwh"] == 40.0
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.writes").fetchone()[0] == int(out.strip())


def test_publishing_while_requests_run_never_fails_a_request(tmp_path):
    root, warehouse, snaps, client = _published(tmp_path)
    seen: list[float] = []
    failures: list[str] = []
    done = threading.Event()

    def hammer():
        while not done.is_set():
            response = client.get("/kpi/energy/total?user_id=U1")
            if response.status_code != 200:
                failures.append(response.text)
            else:
                seen.append(response.json()["energy_kwh"])

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(5):  # five warehouse runs, each ending with a publish
            with duckdb.connect(str(warehouse)) as con:
                con.execute("UPDATE marts.mart_energy_daily SET energy_kwh = energy_kwh + 1 WHERE entity_id = 'U1'")
            snapshot.publish(warehouse, snaps)
            time.sleep(0.05)
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert failures == []
    # every answer is one snapshot's (4 days x 1 kWh more per run), and the readers saw the swaps
    assert set(seen) <= {36.0 + 4 * n for n in range(6)} and len(set(seen)) >= 2
    assert client.get("/kpi/energy/total?user_id=U1").json()["energy_kwh"] == 56.0
    assert len(list(snaps.glob("marts-*.duckdb"))) == 3


def test_copies_left_by_a_crashed_publish_are_cleaned_up_later(tmp_path):
    snaps = tmp_path / "snapshots"
    snaps.mkdir()
    stale = snaps / ".marts-20200101T000000000000Z.duckdb.tmp"
    fresh = snaps / ".marts-20990101T000000000000Z.duckdb.tmp"
    stale.write_bytes(b"half a copy")
    fresh.write_bytes(b"a publish under way")
    os.utime(stale, (time.time() - 2 * 3600, time.time() - 2 * 3600))
    snapshot.publish(small_warehouse(tmp_path / "warehouse.duckdb", 1), snaps)
    assert not stale.exists() and fresh.exists()
