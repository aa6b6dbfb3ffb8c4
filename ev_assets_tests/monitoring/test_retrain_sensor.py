"""The loop on a small simulated data root: polls, warehouse and the availability models; monitoring finds no drift
and the sensor requests nothing; later polls with a demand shift and new stations make the drift checks fail, the
sensor requests exactly one retraining, which registers a new version of each model through the champion gate; a
second breach inside the cool-down requests nothing.

The story runs once (module fixture `loop`, about two minutes); the tests read what happened. The sensor's cursor
rules are also tested on hand-made check records (no runs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pandas as pd
import pytest

from ev_assets import cli
from ev_assets.defs.ml.models import key_of
from ev_assets.lib.settings import Settings
from ev_assets_tests.fixtures import jobs

# Monday to Thursday, about 16 stations
INITIAL = {"EV_SIM_CITIES": "koeln,bonn", "EV_SIM_STATIONS_PER_CITY": "8", "EV_SIM_START": "2022-01-10", "EV_SIM_DAYS": "4"}
# the Friday after: three times the demand, and twice as many stations per city
SHIFTED = {"EV_SIM_START": "2022-01-14", "EV_SIM_DAYS": "1", "EV_SIM_DEMAND_FACTOR": "3", "EV_SIM_STATIONS_PER_CITY": "16"}
CLEARED = (*jobs.CLEARED, "EV_SIM_DEMAND_FACTOR", "EV_SIM_SEED",
           "EV_DRIFT_WINDOW_HOURS", "EV_DRIFT_SAMPLE_ROWS", "EV_DRIFT_SHARE_LIMIT", "EV_LIVE_BRIER_LIMIT",
           "EV_LIVE_ERROR_RATIO_LIMIT", "EV_LIVE_ERROR_SLACK", "EV_RETRAIN_COOLDOWN_MINUTES", "EV_POLL_INTERVAL_MINUTES",
           "DBT_INDIRECT_SELECTION")
MODELS = ("station_available_10min", "station_available_60min")
DRIFT_CHECKS = {f"monitoring/drift_{m}:no_drift" for m in MODELS}
LIVE_CHECK = "monitoring/live_error:live_error_within_limit"
# the probability each logged forecast answered: 0.9 when the station had a free point at the forecast's poll, else
# 0.1 (as sharp as a good 10-minute forecast: within the live-error limit of 1 x persistence's Brier + 0.01)
LOGGED_P = {True: 0.9, False: 0.1}


def _checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {f"{e.asset_check_evaluation_data.asset_key.to_user_string()}:{e.asset_check_evaluation_data.check_name}":
            e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}


def _materialized(result, key: str) -> dict:
    """The metadata of the run's materialization of `key` ({} if none)."""
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION" and event.asset_key.to_user_string() == key:
            return {k: v.value for k, v in event.step_materialization_data.materialization.metadata.items()}
    return {}


def _log_forecasts(data_dir, features: pd.DataFrame) -> pd.DataFrame:
    """30 availability forecasts of the 10-minute model, as the service logs them: the features of a poll of
    2022-01-13 afternoon, target 10 minutes later (the next poll)."""
    rows = features[features["polled_at"] >= pd.Timestamp("2022-01-13 12:00", tz="UTC")].head(30)
    folder = data_dir / "serving" / "predictions"
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, row in enumerate(rows.itertuples(index=False)):
        inputs = {c: (None if pd.isna(v) else float(v)) for c, v in row._asdict().items()
                  if c not in ("station_id", "polled_at", "city_slug", "operator_name") and not c.startswith("available_in")}
        features_at = row.polled_at
        lines.append(json.dumps({
            "request_id": f"{i:032x}", "at": (features_at + pd.Timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "endpoint": "/predict/availability", "model": "station_available_10min", "version": "1",
            "inputs": inputs, "request": {"station_id": row.station_id},
            "output": {"probability_available": LOGGED_P[bool(row.any_available)]},
            "latency_ms": 2.0, "station_id": row.station_id, "features_at": features_at.isoformat(),
            "target_at": (features_at + pd.Timedelta(minutes=10)).isoformat(), "horizon_minutes": 10}))
    (folder / "2022-01-13.jsonl").write_text("\n".join(lines) + "\n")
    return rows


@dataclass
class Loop:
    data_dir: object
    versions_trained: dict
    monitoring_unchanged: object
    tick_unchanged: object
    monitoring_shifted: object
    tick_shifted: object
    retrain: object
    versions_retrained: dict
    monitoring_again: object
    tick_again: object
    logged: pd.DataFrame
    features: pd.DataFrame


@pytest.fixture(scope="module")
def loop(tmp_path_factory, dbt_manifest):
    from ev_assets.definitions import defs
    from ev_assets.lib.ml.registry import Registry

    data_dir = tmp_path_factory.mktemp("retrain") / "data"
    sensor = defs.resolve_sensor_def("retrain_on_drift")
    # the warehouse builds only what the station features read (and dbt runs only the tests of what it built)
    feature_inputs = dg.AssetSelection.assets(dg.AssetKey(["ml", "station_time_features"])).upstream() \
        .required_multi_asset_neighbors().resolve(defs.resolve_asset_graph())

    # in memory: the 600-odd poll partitions are recorded without a disk write each
    with pytest.MonkeyPatch.context() as env, dg.DagsterInstance.ephemeral() as instance:
        for name in CLEARED:
            env.delenv(name, raising=False)
        env.setenv("EV_DATA_DIR", str(data_dir))
        env.setenv("DBT_INDIRECT_SELECTION", "cautious")
        for name, value in INITIAL.items():
            env.setenv(name, value)

        def run(job: str, tags=None, only=None):
            job_def = defs.resolve_job_def(job)
            keys = {k for k in job_def.asset_layer.executable_asset_keys
                    if k.path[-1] != "dbt_docs_site" and (only is None or k in only)}
            # the checks the job's own assets run (the dbt tests of the raw tables run with the warehouse job)
            checks = set(job_def.asset_layer.asset_graph.asset_check_keys) if job == "ingest_job" else None
            subset = job_def.get_subset(asset_selection=keys, asset_check_selection=checks)
            result = subset.execute_in_process(instance=instance, tags=tags or {}, raise_on_error=False)
            failures = [e.step_failure_data.error.to_string() for e in result.all_events if e.is_step_failure]
            assert result.success, f"{job}: " + "\n".join(failures)
            return result

        def polls_to_warehouse():
            (window,) = cli.poll_windows(Settings.from_env())
            run("chargecloud_poll_job", cli.poll_tags(window))
            run("ingest_job", cli.day_tags(window))
            run("warehouse_job", cli.day_tags(window), only=feature_inputs)

        def tick(cursor):
            return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor))

        registry = Registry(data_dir / "mlflow")
        versions = lambda: {m: registry.versions(m) for m in MODELS}  # noqa: E731

        polls_to_warehouse()
        run("ml_job", only={dg.AssetKey(["ml", "station_time_features"]),
                            *(key_of(n, stage) for n in MODELS for stage in ("candidate", "evaluation", "champion"))})
        trained = versions()
        features = pd.read_parquet(data_dir / "ml" / "features" / "station_time_features" / "features.parquet")
        logged = _log_forecasts(data_dir, features)

        unchanged = run("monitoring_job")
        first = tick(None)

        for name, value in SHIFTED.items():
            env.setenv(name, value)
        polls_to_warehouse()
        shifted = run("monitoring_job")
        second = tick(first.cursor)
        # executed as the daemon would launch it: the requested job with the request's tags
        retrain = run("retrain_job", tags=second.run_requests[0].tags) if second.run_requests else None
        retrained = versions()

        env.setenv("EV_LIVE_ERROR_RATIO_LIMIT", "0")  # the live-error check fails too, this time: a limit of 0
        env.setenv("EV_LIVE_ERROR_SLACK", "0")
        again = run("monitoring_job")
        third = tick(second.cursor)
        yield Loop(data_dir, trained, unchanged, first, shifted, second, retrain, retrained, again, third, logged, features)


# --- the story -------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_without_drift_the_checks_pass_and_the_sensor_requests_nothing(loop):
    checks = _checks(loop.monitoring_unchanged)
    assert {name for name, c in checks.items() if c.passed} >= DRIFT_CHECKS | {LIVE_CHECK}, \
        {n: c.metadata for n, c in checks.items()}
    assert loop.tick_unchanged.run_requests == []
    assert "no newly failed check" in loop.tick_unchanged.skip_message
    handled = json.loads(loop.tick_unchanged.cursor)["handled"]
    assert set(handled) == DRIFT_CHECKS | {LIVE_CHECK}  # passed records are remembered as handled
    for model in MODELS:
        meta = _materialized(loop.monitoring_unchanged, f"monitoring/drift_{model}")
        assert meta["share_drifted"] <= Settings().drift_share_limit
        assert meta["current_rows_from_polls"] > 0 and meta["reference_rows"] > 0


@pytest.mark.slow
def test_a_demand_shift_with_new_stations_fails_the_drift_checks(loop):
    checks = _checks(loop.monitoring_shifted)
    for name in DRIFT_CHECKS:
        assert not checks[name].passed and checks[name].severity == dg.AssetCheckSeverity.WARN
        assert checks[name].metadata["share_drifted"].value > Settings().drift_share_limit
    assert loop.monitoring_shifted.success  # a warning: the run itself succeeds
    meta = _materialized(loop.monitoring_shifted, "monitoring/drift_station_available_10min")
    drifted = set(meta["drifted_columns"].split(", "))
    assert {"share_occupied", "n_charging_points", "poi_total"} <= drifted  # busier, and new stations
    report = Path(meta["report"])  # a stamped report (copied to latest.html, since replaced by a later run)
    assert report.parent == loop.data_dir / "monitoring" / "drift" / "station_available_10min"
    assert report.stat().st_size > 100_000 and (report.parent / "latest.html").exists()
    assert json.loads(report.with_suffix(".json").read_text())["share_drifted"] == meta["share_drifted"]


@pytest.mark.slow
def test_the_sensor_requests_exactly_one_retraining(loop):
    (request,) = loop.tick_shifted.run_requests
    assert request.job_name in (None, "retrain_job")
    for name in DRIFT_CHECKS:
        assert name in request.run_key
    assert "no_drift" in request.tags["ev_assets/retrain_reason"]
    assert json.loads(loop.tick_shifted.cursor)["last_request_at"]


@pytest.mark.slow
def test_the_retraining_registers_a_new_version_through_the_gate(loop):
    assert loop.retrain is not None and loop.retrain.success
    for model in MODELS:
        assert loop.versions_retrained[model] == [*loop.versions_trained[model], str(len(loop.versions_trained[model]) + 1)]
        checks = _checks(loop.retrain)
        gate = checks[f"ml/{model}_evaluation:promotion_gate"]
        assert gate.metadata["reason"].value  # better beyond noise or not, with the intervals
        meta = _materialized(loop.retrain, f"ml/{model}_candidate")
        assert meta["registered_version"] == loop.versions_retrained[model][-1]
        champion = _materialized(loop.retrain, f"ml/{model}_champion")
        cleared = all(c.passed for name, c in checks.items() if name.startswith(f"ml/{model}_evaluation:"))
        assert champion["promoted"] == cleared and champion["candidate_version"] == meta["registered_version"]


@pytest.mark.slow
def test_a_second_breach_inside_the_cool_down_requests_nothing(loop):
    checks = _checks(loop.monitoring_again)
    failed = {name for name, c in checks.items() if not c.passed}
    assert failed >= DRIFT_CHECKS | {LIVE_CHECK}
    assert loop.tick_again.run_requests == []
    assert "cool-down" in loop.tick_again.skip_message
    cursor = json.loads(loop.tick_again.cursor)
    assert cursor["last_request_at"] == json.loads(loop.tick_shifted.cursor)["last_request_at"]
    assert set(cursor["handled"].values()) != set(json.loads(loop.tick_shifted.cursor)["handled"].values())


@pytest.mark.slow
def test_the_prediction_log_and_the_live_error(loop):
    log = _materialized(loop.monitoring_unchanged, "monitoring/prediction_log")
    assert log["dagster/row_count"] == 30 and log["per_model"] == {"station_available_10min": 30}
    live = _materialized(loop.monitoring_unchanged, "monitoring/live_error")
    # the outcome of each forecast: the station's poll whose interval holds target_at (10 minutes after features_at)
    outcome = loop.features.set_index(["station_id", "polled_at"])["any_available"]
    keys = [(s, t + pd.Timedelta(minutes=10)) for s, t in zip(loop.logged["station_id"], loop.logged["polled_at"])]
    answered = [LOGGED_P[bool(a)] for a in loop.logged["any_available"]]
    expected = ((answered - outcome.loc[keys].astype(float).to_numpy()) ** 2).mean()
    assert (live["predictions"], live["matched"], live["unmatched"]) == (30, 30, 0)
    assert live["latest_brier"]["station_available_10min"] == pytest.approx(expected)
    drift = _materialized(loop.monitoring_unchanged, "monitoring/drift_station_available_10min")
    assert drift["current_rows_from_requests"] == 30


# --- the cursor rules, on hand-made records ---------------------------------------------------------------------
class FakeInstance:
    def __init__(self, records):
        self.records = records  # check key (user string) -> record

    def get_latest_asset_check_evaluation_record(self, key):
        return self.records.get(key.to_user_string())


def _record(record_id: int, status: str, version: str | None = None):
    """What the sensor reads of an `AssetCheckExecutionRecord` (with the drift check's reference version)."""
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    evaluation = SimpleNamespace(metadata={"reference_version": dg.MetadataValue.text(version)} if version else {})
    return SimpleNamespace(id=record_id, run_id=f"run{record_id:05d}", status=AssetCheckExecutionRecordStatus[status],
                           evaluation=evaluation)


def test_a_drift_that_persists_against_the_same_version_is_one_breach():
    """Day after day the check fails against v3, for which a retraining was requested (and the gate kept v3): no
    more requests. It passes, then fails again: a new breach. v4 fails: a new breach too."""
    from ev_assets.defs.monitoring.sensors import Cursor, evaluate

    drift15, _ = sorted(DRIFT_CHECKS)
    day = timedelta(days=1)
    now = datetime(2022, 1, 20, 1, tzinfo=timezone.utc)
    cool = timedelta(hours=6)
    request, _, cursor = evaluate(FakeInstance({drift15: _record(1, "FAILED", "3")}), Cursor(), cool, now)
    assert request is not None and cursor.requested_for == {drift15: "3"}
    request, reason, cursor = evaluate(FakeInstance({drift15: _record(2, "FAILED", "3")}), Cursor.load(cursor.dump()),
                                       cool, now + day)
    assert request is None and "one request per breach" in reason
    request, _, cursor = evaluate(FakeInstance({drift15: _record(3, "SUCCEEDED", "3")}), cursor, cool, now + 2 * day)
    assert request is None and cursor.requested_for == {}
    request, _, cursor = evaluate(FakeInstance({drift15: _record(4, "FAILED", "3")}), cursor, cool, now + 3 * day)
    assert request is not None
    request, _, cursor = evaluate(FakeInstance({drift15: _record(5, "FAILED", "4")}), cursor, cool, now + 4 * day)
    assert request is not None and cursor.requested_for == {drift15: "4"}


def test_cursor_rules_one_request_per_breach_planned_skipped_cool_down_honoured():
    from ev_assets.defs.monitoring.sensors import Cursor, evaluate

    drift15, drift60 = sorted(DRIFT_CHECKS)
    now = datetime(2022, 1, 14, 12, tzinfo=timezone.utc)
    cool = timedelta(hours=6)

    # a record still PLANNED is not looked at (its row is updated in place)
    request, reason, cursor = evaluate(FakeInstance({drift15: _record(7, "PLANNED")}), Cursor(), cool, now)
    assert request is None and cursor.handled == {}
    # two checks fail at once: one request for both
    records = {drift15: _record(7, "FAILED"), drift60: _record(8, "FAILED"), LIVE_CHECK: _record(9, "SUCCEEDED")}
    request, reason, cursor = evaluate(FakeInstance(records), cursor, cool, now)
    assert request.run_key == f"retrain:{drift15}#7+{drift60}#8"
    assert cursor.handled == {drift15: 7, drift60: 8, LIVE_CHECK: 9}
    # the same records again: already handled
    request, reason, cursor = evaluate(FakeInstance(records), Cursor.load(cursor.dump()), cool, now + timedelta(hours=1))
    assert request is None and "no newly failed" in reason
    # a new breach an hour later: inside the cool-down, handled but nothing requested
    records[drift15] = _record(12, "FAILED")
    request, reason, cursor = evaluate(FakeInstance(records), cursor, cool, now + timedelta(hours=1))
    assert request is None and "cool-down" in reason and cursor.handled[drift15] == 12
    # after the cool-down a new breach is requested again
    records[drift60] = _record(15, "FAILED")
    request, reason, cursor = evaluate(FakeInstance(records), cursor, cool, now + timedelta(hours=7))
    assert request.run_key == f"retrain:{drift60}#15"
    assert cursor.last_request_at == (now + timedelta(hours=7)).isoformat()
