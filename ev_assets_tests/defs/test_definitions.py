"""The code location loads, and the asset graph has the shape and lineage the README describes."""

import dagster as dg


def test_definitions_load_with_jobs_and_stopped_schedules(defs):
    dg.Definitions.validate_loadable(defs)
    assert {j.name for j in defs.jobs} == {"chargecloud_poll_job", "ingest_job", "warehouse_job", "ml_job",
                                              "monitoring_job", "retrain_job", "rebuild_raw_job",
                                              "sources_job", "chargecloud_ingest_job"}
    schedules = {s.name: s for s in defs.schedules}
    assert set(schedules) == {"chargecloud_every_10_minutes", "ingest_daily", "warehouse_daily", "monitoring_daily",
                              "ml_weekly"}
    assert all(s.default_status == dg.DefaultScheduleStatus.STOPPED for s in schedules.values())
    assert schedules["chargecloud_every_10_minutes"].cron_schedule == "*/10 * * * *"


def test_lineage_runs_from_each_raw_pull_to_the_kpis(defs):
    graph = defs.resolve_asset_graph()
    key = dg.AssetKey.from_user_string

    ancestors = _ancestors(graph, key("marts/mart_utilization_city_daily"))
    assert {"chargecloud_polls", "raw/status_chargingpoints", "staging/stg_chargecloud__charging_point_statuses",
            "intermediate/int_charging_point_status_runs", "marts/fct_charging_point_status"} <= ancestors
    assert {"session_reports_pull", "raw/session_reports", "acn_sessions_pull", "charging_events_pull"} <= _ancestors(
        graph, key("marts/mart_energy_daily")
    )
    assert {"osm_pulls", "raw/osm_pois", "raw/poi_station_map"} <= _ancestors(graph, key("marts/dim_poi_station"))
    assert "marts/fct_charging_sessions" in _ancestors(graph, key("dbt_docs_site"))
    # every model back to the raw pulls
    assert {"ml/station_time_features", "marts/fct_charging_point_status", "chargecloud_polls"} <= _ancestors(
        graph, key("ml/station_available_10min_candidate"))
    assert {"ml/station_day_features", "raw/poi_station_map", "osm_pulls"} <= _ancestors(
        graph, key("ml/station_sessions_per_day_candidate"))
    assert {"ml/session_features", "raw/session_reports", "session_reports_pull"} <= _ancestors(
        graph, key("ml/session_energy_kwh_candidate"))
    assert {"ml/vehicle_telemetry_features", "raw/vehicle_telemetry"} <= _ancestors(
        graph, key("ml/vehicle_plugged_in_15min_candidate"))
    # the lifecycle: candidate -> evaluation (blocking checks) -> champion, which the monitoring reads
    assert {"ml/session_energy_kwh_candidate", "ml/session_energy_kwh_evaluation"} <= _ancestors(
        graph, key("ml/session_energy_kwh_champion"))
    assert "ml/station_available_60min_champion" in _ancestors(graph, key("monitoring/drift_station_available_60min"))
    checks = {k.to_user_string() for k in graph.asset_check_keys}
    assert {"ml/station_available_10min_evaluation:promotion_gate", "ml/station_available_10min_evaluation:no_regression",
            "ml/station_available_10min_evaluation:onnx_parity",
            "ml/session_energy_kwh_candidate:enough_history"} <= checks
    assert "ml/session_energy_kwh_evaluation:onnx_parity" not in checks


def test_every_asset_is_grouped_described_and_dbt_tests_are_checks(defs):
    graph = defs.resolve_asset_graph()
    groups = {}
    for node in graph.asset_nodes:
        groups.setdefault(node.group_name, set()).add(node.key.to_user_string())
        if node.is_executable:
            assert node.description, f"{node.key.to_user_string()} has no description for the UI"
    assert set(groups) == {"raw", "warehouse", "docs", "serving", "ml", "monitoring", "live"}
    assert "chargecloud_polls" in groups["raw"] and "marts/fct_charging_sessions" in groups["warehouse"]
    check_names = {k.name for k in graph.asset_check_keys}
    assert {"all_cities_polled", "status_charging_point_is_known", "no_duplicate_charging_point_poll",
            "station_coordinates_in_germany"} <= check_names
    assert len(check_names) > 100


def _ancestors(graph, key) -> set[str]:
    seen, todo = set(), [key]
    while todo:
        for parent in graph.get(todo.pop()).parent_keys:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return {k.to_user_string() for k in seen}


def test_every_asset_written_in_a_domain_is_in_the_code_location(defs):
    """Domains are found, not listed: an asset defined anywhere under ev_assets/defs must reach the UI."""
    import importlib
    import pkgutil

    import ev_assets.defs as domains
    from ev_assets.definitions import domain_definitions

    assert {"raw", "warehouse", "jobs", "resources"} <= set(domain_definitions())
    loaded = {key for a in defs.assets if isinstance(a, dg.AssetsDefinition) for key in a.keys}
    for module in pkgutil.walk_packages(domains.__path__, prefix=f"{domains.__name__}."):
        for value in vars(importlib.import_module(module.name)).values():
            if isinstance(value, dg.AssetsDefinition):
                assert set(value.keys) <= loaded, f"{module.name} defines {value.keys} outside every domain's defs"


def test_the_models_of_a_family_are_candidates_of_one_step(defs):
    """A family trains once per run: with a process per step (the daemon's default executor), a step per model
    trained the whole family, backtests included, once per model."""
    from ev_assets.defs.ml.families import FAMILIES
    from ev_assets.defs.ml.models import key_of

    graph = defs.resolve_asset_graph()
    for family in FAMILIES:
        steps = {graph.get(key_of(name, "candidate")).assets_def.node_def.name for name in family.models}
        assert steps == {f"{family.feature_set}_candidates"}, family.feature_set
