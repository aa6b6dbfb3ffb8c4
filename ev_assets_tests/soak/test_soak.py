"""The soak, shortened: three simulated days driven by the platform's own schedules and sensor, audited daily
(`make soak` runs 30; three keep the suite short and still reach the Monday training)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ev_assets_tests.fixtures.paths import REPO_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def soak(tmp_path_factory, dbt_manifest):
    """Three days from a Friday (the Monday training comes before the last day's audit) on a small fleet; the
    shift on day 2. The marts are compared with a one-shot build once, on the last day: over all three days."""
    root = tmp_path_factory.mktemp("soak") / "data"
    results = root.parent / "soak.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EV_", "DAGSTER_HOME"))}
    env.update({"EV_DATA_DIR": str(root), "DAGSTER_HOME": str(root / "dagster_home"), "EV_SIM_CITIES": "koeln",
                "EV_SIM_STATIONS_PER_CITY": "6"})
    (root / "dagster_home").mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, "-m", "ev_assets.soak", "--days", "3", "--start", "2022-01-14", "--shift-day", "2",
         "--added-stations", "2", "--requests-per-hour", "1", "--poll-batch", "144", "--marts-every", "3",
         "--results-json", str(results)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1200)
    return done, json.loads(results.read_text()) if results.exists() else None, root


def test_three_days_pass_every_daily_audit(soak):
    done, results, _ = soak
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "soak passed" in done.stdout
    days = results["days"]
    assert [d["day"] for d in days] == [1, 2, 3]
    assert all(d["lost"] == {} for d in days)  # each raw table = the distinct records pulled so far
    # the warehouse built day by day equals a one-shot build of the three days, table for table
    assert [d["marts_compared"] >= 25 for d in days] == [False, False, True]
    assert all(d["marts_differing"] == [] for d in days)
    assert all(d["failed_runs"] == [] for d in days)


def test_history_accumulates_day_after_day(soak):
    _, results, _ = soak
    rows = [d["raw_rows"] for d in results["days"]]
    assert rows == sorted(rows) and rows[-1] > 2.5 * rows[0]  # three days, the last two at four times the demand


def test_the_new_stations_and_the_trained_models_reach_the_service(soak):
    _, results, root = soak
    last = results["days"][-1]
    assert last["champions"], "the Monday training made no champion"
    assert last["served_not_champion"] == [] and last["unanswered"] == []
    # /health every hour, and a forecast too once the first day's stations are known (from day 2)
    assert sum(d["requests"] for d in results["days"]) >= 3 * 24 + 2 * 24
    # the runs are in the instance the UI reads, with the schedule that asked for them
    import dagster as dg

    with dg.DagsterInstance.from_config(str(root / "dagster_home")) as instance:
        runs = instance.get_runs()
        by_schedule = {r.tags.get("dagster/schedule_name") for r in runs}
    assert {"chargecloud_every_10_minutes", "ingest_daily", "warehouse_daily", "monitoring_daily", "ml_weekly"} <= by_schedule
