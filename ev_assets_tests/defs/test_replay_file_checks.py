"""Replay folders with a bad file beside good ones, through Dagster: the good files load, the bad one is named in
the failed `all_replay_files_read` check (and quarantined where the source has a quarantine), nothing crashes."""

import bz2
import gzip
import json

import dagster as dg
from ev_assets_tests.fixtures.jobs import raw_tables
import pytest

from ev_assets.defs.raw.openchargemap import ocm_tables, openchargemap_pull
from ev_assets.defs.raw.osm import osm_pois, osm_pulls
from ev_assets.defs.raw.sessions import build_session_assets
from ev_assets.lib.sources.sessions.simulate import simulated_files
from ev_assets.lib.settings import SimulationSettings
from ev_assets_tests.fixtures.recordings import RECORDED_POI, RECORDED_REFERENCE, TINY_OSM
from ev_assets_tests.fixtures.jobs import materialize

CHECK = "all_replay_files_read"


def _check(result, asset: str) -> dg.AssetCheckEvaluation:
    [evaluation] = [
        e.asset_check_evaluation_data for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.asset_check_evaluation_data.asset_key.path == [asset]
    ]
    assert evaluation.check_name == CHECK
    return evaluation


def _meta(result, asset: str) -> dict:
    [materialization] = result.asset_materializations_for_node(asset)
    return {key: value.value for key, value in materialization.metadata.items()}


def _query(data_dir, sql: str) -> list[tuple]:
    with raw_tables(data_dir) as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def replay_dir(tmp_path):
    folder = tmp_path / "replay"
    folder.mkdir()
    return folder


def test_osm_loads_gz_and_plain_extracts_beside_a_corrupt_one(ev_env, replay_dir, data_dir):
    osm = replay_dir / "osm"
    osm.mkdir()
    (osm / "plain.osm").write_text(TINY_OSM, "utf-8")
    (osm / "packed.osm.gz").write_bytes(gzip.compress(TINY_OSM.encode()))
    (osm / "corrupt.osm.bz2").write_bytes(bz2.compress(TINY_OSM.encode())[:200])  # cut off in the download
    (osm / "notes.txt").write_text("where the extracts came from", "utf-8")

    result, warnings = materialize([osm_pulls, osm_pois], data_dir, replay_dir)

    check = _check(result, "osm_pulls")
    assert check.passed is False
    assert [f["file"] for f in check.metadata["unreadable_file_list"].value] == ["corrupt.osm.bz2"]
    meta = _meta(result, "osm_pulls")
    assert (meta["areas"], meta["unusable_files"], meta["unreadable_files"]) == (2, 2, 1)
    kinds = {f["file"]: f["kind"] for f in meta["unusable_file_list"]}
    assert kinds == {"corrupt.osm.bz2": "unreadable", "notes.txt": "ignored"}
    assert any("corrupt.osm.bz2" in w for w in warnings) and any("notes.txt" in w for w in warnings)
    rows = _query(data_dir, "SELECT area, count(*) FROM raw.osm_pois GROUP BY area ORDER BY area")
    assert rows == [("packed", 2), ("plain", 2)]


def test_osm_with_only_a_bad_extract_fails_its_check_not_the_run(ev_env, replay_dir, data_dir):
    (replay_dir / "osm").mkdir()
    (replay_dir / "osm" / "only.osm").write_text("<osm><node id='1'", "utf-8")

    result, warnings = materialize([osm_pulls, osm_pois], data_dir, replay_dir)

    assert _check(result, "osm_pulls").passed is False
    assert any("no area could be read" in w for w in warnings)
    assert _query(data_dir, "SELECT count(*) FROM raw.osm_pois") == [(0,)]


def test_an_osm_extract_without_pois_is_named_in_a_warning_and_counted_per_area(ev_env, replay_dir, data_dir):
    (replay_dir / "osm").mkdir()
    (replay_dir / "osm" / "plain.osm").write_text(TINY_OSM, "utf-8")
    (replay_dir / "osm" / "quiet-village.osm").write_text(
        '<?xml version="1.0"?><osm version="0.6"><node id="1" lat="49.9" lon="11.5"><tag k="tourism" v="hotel"/>'
        "</node></osm>", "utf-8")  # readable, but nothing the POI tags match

    result, warnings = materialize([osm_pulls, osm_pois], data_dir, replay_dir)

    assert _check(result, "osm_pulls").passed is True  # an empty area is not a broken file
    assert [w for w in warnings if "quiet-village" in w] == [
        "osm: area quiet-village has no features matching the POI tags (EV_OSM_TAGS): it adds no rows to raw.osm_pois"]
    meta = _meta(result, "osm_pulls")
    assert meta["features_per_area"] == {"plain": 2, "quiet-village": 0}
    assert meta["areas_without_features"] == ["quiet-village"]
    assert _meta(result, "osm_pois")["per_area"] == {"plain": 2, "quiet-village": 0}
    assert _query(data_dir, "SELECT area, count(*) FROM raw.osm_pois GROUP BY area") == [("plain", 2)]


def test_openchargemap_loads_the_good_answer_and_quarantines_a_broken_file(ev_env, replay_dir, data_dir):
    folder = replay_dir / "openchargemap"
    folder.mkdir()
    (folder / "poi_de.json").write_text(json.dumps(RECORDED_POI), "utf-8")
    (folder / "reference.json").write_text(json.dumps(RECORDED_REFERENCE), "utf-8")
    (folder / "poi_at.json").write_text('[{"ID": 1, "AddressInfo": {', "utf-8")  # the download broke off

    result, warnings = materialize([openchargemap_pull, ocm_tables], data_dir, replay_dir)

    check = _check(result, "openchargemap_pull")
    assert check.passed is False and check.metadata["unreadable_files"].value == 1
    assert check.metadata["unreadable_file_list"].value[0]["file"] == "poi_at.json"
    assert _meta(result, "openchargemap_pull")["pois"] == 3
    assert any("poi_at.json" in w for w in warnings)
    assert _query(data_dir, "SELECT count(*) FROM raw.ocm_stations") == [(2,)]
    quarantined = _query(
        data_dir, "SELECT record_id, reason FROM raw.quarantine WHERE source = 'openchargemap' AND level = 'file'"
    )
    assert [r[0] for r in quarantined] == ["poi_at.json"] and "not valid JSON" in quarantined[0][1]


def test_a_broken_chargecloud_poll_in_a_shared_root_does_not_fail_openchargemap(ev_env, replay_dir, data_dir):
    """Open Charge Map reads the replay root itself (no `openchargemap/` sub-folder), where chargecloud's polls lie
    too: a poll whose download broke off is chargecloud's to report, and Open Charge Map's check still passes."""
    (replay_dir / "poi_de.json").write_text(json.dumps(RECORDED_POI), "utf-8")
    (replay_dir / "reference.json").write_text(json.dumps(RECORDED_REFERENCE), "utf-8")
    (replay_dir / "20220111_215824_cp_data_cities.json").write_text('{"koeln": {"data": [', "utf-8")

    result, warnings = materialize([openchargemap_pull, ocm_tables], data_dir, replay_dir)

    check = _check(result, "openchargemap_pull")
    assert check.passed is True and check.metadata["unreadable_files"].value == 0
    assert _meta(result, "openchargemap_pull")["pois"] == 3
    assert not any("cp_data_cities" in w for w in warnings)


def test_session_reports_load_beside_a_file_without_its_header(ev_env, replay_dir, data_dir):
    folder = replay_dir / "sessions"
    folder.mkdir()
    [(name, good)] = simulated_files(SimulationSettings(days=1), "session_reports")
    (folder / name).write_bytes(good)
    (folder / "garage 7 charging reports.csv").write_text("a;b;c\r\n1;2;3\r\n", "utf-8")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8")
    pull, table = build_session_assets("session_reports")

    result, warnings = materialize([pull, table], data_dir, replay_dir)

    check = _check(result, "session_reports_pull")
    assert check.passed is False
    [bad] = check.metadata["unreadable_file_list"].value
    assert bad["file"] == "garage 7 charging reports.csv" and "header lacks" in bad["reason"]
    meta = _meta(result, "session_reports_pull")
    assert (meta["files"], meta["unreadable_files"], meta["unusable_files"]) == (2, 1, 2)
    assert any("garage 7 charging reports.csv" in w for w in warnings) and any("photo.jpg" in w for w in warnings)
    good_rows = good.decode().strip().count("\n")  # lines after the header
    assert _query(data_dir, "SELECT count(*) FROM raw.session_reports") == [(good_rows,)]
    quarantined = _query(data_dir, "SELECT level, raw_file FROM raw.quarantine WHERE source = 'session_reports'")
    assert [level for level, _ in quarantined] == ["file"] and "garage_7_charging_reports" in quarantined[0][1]


def test_simulated_sources_pass_their_checks(ev_env, data_dir):
    pull, _ = build_session_assets("charging_events")
    result, _ = materialize([pull, openchargemap_pull], data_dir, source="simulated")
    assert _check(result, "charging_events_pull").passed and _check(result, "openchargemap_pull").passed
