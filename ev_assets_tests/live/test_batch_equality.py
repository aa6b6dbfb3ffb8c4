"""The live path's history equals what the daily batch path builds from the same polls and events."""

from __future__ import annotations

import pandas as pd

from ev_assets.lib.live import messages, store
from ev_assets.lib.live.consumer import consume_until_idle
from ev_assets.lib.sources.sessions.simulate import simulated_events
from ev_assets.lib.settings import Settings
from ev_assets_tests.fixtures.jobs import raw_tables, run_job


def _runs(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Each item's status changes: its first poll, then every poll whose status differs from the one before."""
    frame = frame.sort_values([*keys, "poll_slot"])
    previous = frame.groupby(keys)["status"].shift()
    return frame[previous.isna() | (previous != frame["status"])]


def test_the_live_history_equals_the_daily_batch_tables(defs, ev_env, data_dir, broker, bus):
    ev_env.setenv("EV_SIM_DAYS", "1")
    ev_env.setenv("EV_NATS_URL", broker.url)  # the poll job publishes each stored poll's changes
    settings = Settings.from_env()
    run_job(defs, "chargecloud_poll_job", "2022-01-10-00:00", "2022-01-10-23:50")
    bus.publish(messages.charging_event(e) for e in simulated_events(settings.simulation))
    stats = consume_until_idle(bus, settings.live_dir, idle_s=1.0)
    assert stats.landed.quarantined == 0 and stats.errors == 0
    run_job(defs, "ingest_job", "2022-01-10", "2022-01-10")

    batch = raw_tables(settings.data_dir)  # the raw tables ingestion wrote to the lake
    live = store.connect_reader(settings.live_dir)
    iso = lambda column: column.map(messages.iso)  # noqa: E731

    for table, keys in (("status_chargingpoints", ["charging_point_id"]),
                        ("status_connectors", ["charging_point_id", "connector_id"])):
        rows = batch.execute(f"SELECT poll_slot, poll_time, city_slug, station_id, {', '.join(keys)}, status "
                             f"FROM raw.{table}").df()
        assert len(rows) == 144 * rows[keys].drop_duplicates().shape[0]  # every item in every poll of the day
        expected = _runs(rows, keys).assign(poll_slot=lambda f: iso(f.poll_slot), poll_time=lambda f: iso(f.poll_time))
        got = pd.read_sql(f"SELECT poll_slot, poll_time, city_slug, station_id, {', '.join(keys)}, status "
                          f"FROM status_changes WHERE table_name = '{table}'", live)
        columns = list(got.columns)
        expected = expected[columns].sort_values(columns).reset_index(drop=True)
        got = got.sort_values(columns).reset_index(drop=True)
        assert len(got) > len(rows[keys].drop_duplicates())  # more than the first poll: statuses did change
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)

    marks = pd.read_sql("SELECT city_slug, poll_slot, ok FROM poll_marks", live)
    log = batch.execute("SELECT city_slug, poll_slot, ok FROM raw.chargecloud_poll_log").df()
    assert len(marks) == len(log) == 144 * 3 and marks["ok"].all()

    columns = ["event_id", "transaction_id", "station_id", "connector_id", "event_type", "event_time", "meter_kwh",
               "power_kw", "cost", "currency"]
    expected = batch.execute(f"SELECT {', '.join(columns)} FROM raw.charging_events").df()
    expected["event_time"] = iso(expected["event_time"])
    got = pd.read_sql(f"SELECT {', '.join(columns)} FROM charging_events", live)
    assert len(got) == len(expected) > 100
    pd.testing.assert_frame_equal(got.sort_values("event_id").reset_index(drop=True),
                                  expected.sort_values("event_id").reset_index(drop=True), check_dtype=False)
