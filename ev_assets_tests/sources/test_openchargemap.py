"""Open Charge Map: the real recorded answer parses completely; live mode against a local server."""

from __future__ import annotations

import gzip
import json
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from ev_assets.lib.sources import openchargemap as ocm
from ev_assets.lib.http import SourceHTTPError
from ev_assets.lib.rawstore import write_raw
from ev_assets.lib.replayfiles import FileReport
from ev_assets.lib.settings import Settings, SettingsError
from ev_assets.lib.tables import columns
from ev_assets_tests.fixtures.recordings import RECORDED_POI, RECORDED_REFERENCE

KEY = "sekrit-test-key-4711"


def _assert_contract(tables: ocm.OcmTables) -> None:
    assert list(tables.stations.columns) == columns("ocm_stations")
    assert list(tables.connections.columns) == columns("ocm_connections")
    assert list(tables.quarantine.columns) == columns("quarantine")


# --- the real 2,000-POI answer ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_files(shared_data: Path) -> tuple[list, dict]:
    folder = shared_data / "openchargemap"
    return (json.loads((folder / "openchargemap_de.json").read_text("utf-8")),
            json.loads((folder / "ocm_reference.json").read_text("utf-8")))


@pytest.fixture(scope="module")
def real_tables(shared_data: Path) -> ocm.OcmTables:
    settings = Settings(source="replay", replay_dir=shared_data)  # replay folder: shared/data/openchargemap
    pull = ocm.fetch_ocm(settings)
    return ocm.parse_ocm(pull, raw_file="openchargemap_de.json")


def _should_quarantine(poi: dict) -> bool:
    address = poi.get("AddressInfo") or {}
    return poi.get("ID") is None or address.get("Latitude") is None or address.get("Longitude") is None


def test_real_response_parses_completely(real_files, real_tables):
    pois, _ = real_files
    expected_quarantine = sum(_should_quarantine(p) for p in pois)
    _assert_contract(real_tables)
    assert len(pois) == 2000
    assert len(real_tables.stations) + len(real_tables.quarantine) == 2000
    assert len(real_tables.quarantine) == expected_quarantine
    assert real_tables.stations["ocm_id"].is_unique
    assert len(real_tables.connections) == sum(len(p.get("Connections") or []) for p in pois if not _should_quarantine(p))
    assert real_tables.stations["connection_count"].sum() == len(real_tables.connections)
    assert (real_tables.stations["raw_file"] == "openchargemap_de.json").all()


def test_real_operator_names_decoded_and_unknown_ids_kept(real_files, real_tables):
    pois, reference = real_files
    operators = {o["ID"]: o["Title"] for o in reference["Operators"]}
    expected = {p["ID"]: p.get("OperatorID") for p in pois}
    unknown = {i for i, op in expected.items() if op is not None and op not in operators}
    assert unknown, "the real data should hold OperatorIDs missing from the 2021 reference"

    stations = real_tables.stations.set_index("ocm_id")
    for ocm_id, op in expected.items():
        row = stations.loc[ocm_id]
        if op is None:
            assert pd.isna(row["operator_id"]) and row["operator_name"] is None
        else:
            assert row["operator_id"] == op
            assert row["operator_name"] == operators.get(op)  # None for unknown IDs
    assert stations.loc[sorted(unknown), "operator_name"].isna().all()
    assert stations.loc[sorted(unknown), "operator_id"].notna().all()


def test_real_connections_and_power(real_files, real_tables):
    pois, reference = real_files
    types_ = {t["ID"]: t["Title"] for t in reference["ConnectionTypes"]}
    conns = real_tables.connections
    assert conns["connection_type"].tolist() == [types_.get(i) for i in conns["connection_type_id"]]
    by_id = {p["ID"]: p for p in pois}
    for ocm_id, max_kw in real_tables.stations.set_index("ocm_id")["max_power_kw"].items():
        powers = [c["PowerKW"] for c in by_id[ocm_id].get("Connections") or [] if c.get("PowerKW") is not None]
        assert (pd.isna(max_kw) and not powers) or max_kw == max(powers)
    assert real_tables.stations["date_created"].notna().all()
    assert str(real_tables.stations["date_created"].dtype) == "datetime64[ns, UTC]"


# --- parsing rules on small inputs -----------------------------------------------------------------------


def test_bad_pois_are_quarantined_and_the_rest_survive():
    pull = {"poi": [
        *RECORDED_POI,
        {"AddressInfo": {"Latitude": 50.0, "Longitude": 11.0}},  # no ID
        {"ID": 1, "AddressInfo": {"Latitude": "north", "Longitude": 11.0}},
        {"ID": 2, "AddressInfo": {"Latitude": 95.0, "Longitude": 11.0}},
        {"ID": 470413, "AddressInfo": {"Latitude": 50.0, "Longitude": 11.0}},  # duplicate of the first
        {"ID": 3, "AddressInfo": {"Latitude": 50.0, "Longitude": 11.0}, "Connections": ["junk"]},
    ], "reference": RECORDED_REFERENCE}
    tables = ocm.parse_ocm(pull, raw_file="pull.json.gz")
    _assert_contract(tables)
    assert tables.stations["ocm_id"].tolist() == [470413, 470410, 3]
    q = tables.quarantine
    assert q["record_id"].tolist() == ["470999", "", "1", "2", "470413", "3"]
    assert q["level"].tolist() == ["station"] * 5 + ["connection"]
    assert (q["source"] == "openchargemap").all() and (q["raw_file"] == "pull.json.gz").all()
    assert "coordinates" in q["reason"].iloc[0] and "ID" in q["reason"].iloc[1]
    assert json.loads(q["record"].iloc[0])["ID"] == 470999

    first, second = tables.stations.iloc[0], tables.stations.iloc[1]
    assert (first["operator_name"], first["usage_type"], first["status_type"], first["country_iso"]) == (
        "EnBW", "Public", "Operational", "DE")
    assert second["operator_id"] == 3534 and second["operator_name"] is None
    assert second["max_power_kw"] == 300.0 and second["connection_count"] == 2
    assert tables.connections["current_type"].tolist() == ["AC (Single-Phase)", "DC", "AC (Three-Phase)"]


def test_without_reference_ids_stay_and_names_are_null():
    tables = ocm.parse_ocm({"poi": RECORDED_POI[:2], "reference": None})
    assert tables.stations["operator_id"].tolist() == [3492, 3534]
    assert tables.stations[["operator_name", "usage_type", "status_type", "country_iso"]].isna().all().all()
    assert tables.connections["connection_type"].isna().all()


def test_replay_merges_poi_files_dedupes_and_needs_no_reference(tmp_path: Path):
    folder = tmp_path / "openchargemap"
    folder.mkdir()
    older = json.loads(json.dumps(RECORDED_POI[:2]))
    older[0]["AddressInfo"]["Title"] = "old title"
    (folder / "a_older.json").write_text(json.dumps(older), "utf-8")
    (folder / "b_newer.json").write_text(json.dumps(RECORDED_POI[:1] + RECORDED_POI[2:]), "utf-8")
    (folder / "other.json").write_text(json.dumps({"something": "else"}), "utf-8")  # not OCM data: reported

    pull = ocm.fetch_ocm(Settings(source="replay", replay_dir=tmp_path))
    assert pull["reference"] is None
    assert [p["ID"] for p in pull["poi"]] == [470413, 470410, 470999]
    tables = ocm.parse_ocm(pull)
    assert tables.stations["title"].tolist() == ["Bahnhof Leutkirch", "Autohof"]  # the later file wins
    assert tables.stations["operator_name"].isna().all()

    (folder / "ref.json").write_text(json.dumps(RECORDED_REFERENCE), "utf-8")
    pull = ocm.fetch_ocm(Settings(source="replay", replay_dir=tmp_path))
    assert ocm.parse_ocm(pull).stations["operator_name"].tolist() == ["EnBW", None]


def test_a_bad_replay_file_is_reported_and_quarantined_while_the_good_ones_load(tmp_path: Path):
    folder = tmp_path / "openchargemap"
    folder.mkdir()
    (folder / "a_pois.json").write_text(json.dumps(RECORDED_POI), "utf-8")
    (folder / "b_broken.json").write_text('[{"ID": 1, "AddressInfo": ', "utf-8")
    (folder / "c_corrupt.json.gz").write_bytes(b"\x1f\x8b\x08\x00 cut off")
    (folder / "d_error.json").write_text(json.dumps({"error": "rate limited"}), "utf-8")
    (folder / "e_numbers.json").write_text("[1, 2, 3]", "utf-8")
    (folder / "ref.json").write_text(json.dumps(RECORDED_REFERENCE), "utf-8")
    (folder / "ref_old.json").write_text(json.dumps(RECORDED_REFERENCE), "utf-8")
    (folder / "notes.txt").write_text("exported by hand", "utf-8")

    report = FileReport()
    pull = ocm.fetch_ocm(Settings(source="replay", replay_dir=tmp_path), report=report)
    assert [p["ID"] for p in pull["poi"]] == [470413, 470410, 470999]
    assert pull["reference"] == RECORDED_REFERENCE
    bad = ["b_broken.json", "c_corrupt.json.gz", "d_error.json", "e_numbers.json"]
    assert sorted(report.unreadable) == bad and not report.ok
    assert "not valid JSON" in report.unreadable["b_broken.json"]
    assert "not a list of POIs" in report.unreadable["d_error.json"]
    assert sorted(report.ignored) == ["notes.txt", "ref_old.json"]
    assert pull["failed_files"] == report.unreadable

    tables = ocm.parse_ocm(pull, raw_file="pull.json.gz")
    assert tables.stations["ocm_id"].tolist() == [470413, 470410]
    files = tables.quarantine[tables.quarantine["level"] == "file"]
    assert files["record_id"].tolist() == bad
    assert files["reason"].tolist() == [report.unreadable[name] for name in bad]
    assert (files["raw_file"] == "pull.json.gz").all()


def test_only_bad_replay_files_give_an_empty_pull_not_an_error(tmp_path: Path):
    (tmp_path / "openchargemap").mkdir()
    (tmp_path / "openchargemap" / "only.json").write_text("not json at all", "utf-8")
    report, warnings = FileReport(), []
    pull = ocm.fetch_ocm(Settings(source="replay", replay_dir=tmp_path), log=warnings.append, report=report)
    assert pull["poi"] == [] and list(report.unreadable) == ["only.json"]
    assert any("no recorded POIs" in w for w in warnings)
    assert ocm.parse_ocm(pull).quarantine["record_id"].tolist() == ["only.json"]


def test_shared_replay_root_leaves_other_sources_files_alone(tmp_path: Path):
    """Without an `openchargemap/` sub-folder the root is read: chargecloud polls, ACN sessions (JSON too) and
    OSM extracts there are other sources' files, neither POIs nor failures."""
    (tmp_path / "ocm_de.json").write_text(json.dumps(RECORDED_POI[:1]), "utf-8")
    poll = {"data": [], "status_code": 1000, "status_message": "Success", "timestamp": "2022-01-11T21:58:22+01:00"}
    (tmp_path / "20220111_215824_cp_data_cities.json").write_text(json.dumps({"koeln": poll}), "utf-8")
    (tmp_path / "20220111_2158__bonn.json.gz").write_bytes(gzip.compress(json.dumps(poll).encode()))
    (tmp_path / "acn_sessions.json").write_text(json.dumps([{"sessionID": "s1", "ID": 99}]), "utf-8")
    (tmp_path / "bonn.osm").write_text("<osm/>", "utf-8")
    (tmp_path / "oops.json").write_text("{", "utf-8")
    report = FileReport()
    pull = ocm.fetch_ocm(Settings(source="replay", replay_dir=tmp_path), report=report)
    assert [p["ID"] for p in pull["poi"]] == [470413]
    assert list(report.unreadable) == ["oops.json"] and report.ignored == {}


def test_shared_replay_root_leaves_broken_chargecloud_polls_to_chargecloud(tmp_path: Path):
    """A chargecloud poll whose download broke off (named with its poll time, as the scraper names them) is
    chargecloud's to report, not an unreadable file of Open Charge Map's; a broken JSON file of no source still is."""
    (tmp_path / "ocm_de.json").write_text(json.dumps(RECORDED_POI[:1]), "utf-8")
    (tmp_path / "20220111_215824_cp_data_cities.json").write_text('{"koeln": {"data": [', "utf-8")
    (tmp_path / "20220111_2208__bonn.json.gz").write_bytes(b"\x1f\x8b broken")
    (tmp_path / "oops.json").write_text("{", "utf-8")
    report = FileReport()
    pull = ocm.fetch_ocm(Settings(source="replay", replay_dir=tmp_path), report=report)
    assert [p["ID"] for p in pull["poi"]] == [470413]
    assert list(report.unreadable) == ["oops.json"] and report.ignored == {}


def test_a_clean_replay_pull_keeps_its_shape(real_files, shared_data: Path):
    """Without failures the pull is what it always was, so its stored raw file (named by content) stays the same."""
    report = FileReport()
    pull = ocm.fetch_ocm(Settings(source="replay", replay_dir=shared_data), report=report)
    assert set(pull) == {"poi", "reference"} and report.ok and report.ignored == {}
    assert pull["poi"] == real_files[0] and pull["reference"] == real_files[1]


def test_replay_without_poi_file_is_an_empty_pull_with_a_warning(tmp_path: Path):
    (tmp_path / "ref.json").write_text(json.dumps(RECORDED_REFERENCE), "utf-8")
    warnings = []
    pull = ocm.fetch_ocm(Settings(source="replay", replay_dir=tmp_path), log=warnings.append)
    assert pull["poi"] == [] and pull["reference"] == RECORDED_REFERENCE
    assert any("no recorded POIs" in w for w in warnings)
    assert ocm.parse_ocm(pull).stations.empty


def test_simulated_mode_uses_the_simulator(monkeypatch):
    fake = types.ModuleType("ev_assets.lib.simulator")
    fake.ocm_response = lambda sim: RECORDED_POI[:2]
    fake.ocm_reference = lambda sim: RECORDED_REFERENCE
    monkeypatch.setitem(sys.modules, "ev_assets.lib.simulator", fake)
    pull = ocm.fetch_ocm(Settings(source="simulated"))
    assert pull == {"poi": RECORDED_POI[:2], "reference": RECORDED_REFERENCE}


# --- live mode against a local server ----------------------------------------------------------------------


def _live_settings(httpserver, **changes) -> Settings:
    base = Settings(source="live", ocm_url=httpserver.url_for("/v3/poi/"), ocm_api_key=KEY,
                    http_backoff_s=0.01, http_retries=2, http_timeout_s=5.0)
    return base.with_(**changes)


def _serve(httpserver) -> None:
    httpserver.expect_request("/v3/poi/", headers={"X-API-Key": KEY}).respond_with_json(RECORDED_POI)
    httpserver.expect_request("/v3/referencedata/", headers={"X-API-Key": KEY}).respond_with_json(RECORDED_REFERENCE)


def test_live_sends_key_as_header_only_and_never_stores_it(httpserver, data_dir: Path):
    _serve(httpserver)
    pull = ocm.fetch_ocm(_live_settings(httpserver))
    assert pull == {"poi": RECORDED_POI, "reference": RECORDED_REFERENCE}

    poi_request = next(r for r, _ in httpserver.log if r.path == "/v3/poi/")
    assert poi_request.args.to_dict() == {"countrycode": "DE", "maxresults": "5000", "compact": "true",
                                          "verbose": "false", "opendata": "true"}
    for request, _ in httpserver.log:
        assert request.headers.get("X-API-Key") == KEY
        assert KEY not in request.url

    stored = write_raw(data_dir / "raw", "openchargemap", "2025-12-04", pull)
    assert KEY.encode() not in gzip.decompress(stored.path.read_bytes())
    assert len(ocm.parse_ocm(stored.load()).stations) == 2


def test_live_without_key_is_a_clear_error(httpserver):
    with pytest.raises(SettingsError, match="OPENCHARGEMAP_API_KEY"):
        ocm.fetch_ocm(_live_settings(httpserver, ocm_api_key=None))
    assert len(httpserver.log) == 0


def test_live_retries_a_500(httpserver):
    httpserver.expect_oneshot_request("/v3/poi/").respond_with_data("busy", status=500)
    _serve(httpserver)
    messages: list[str] = []
    pull = ocm.fetch_ocm(_live_settings(httpserver), log=messages.append)
    assert len(pull["poi"]) == 3
    assert [r.path for r, _ in httpserver.log] == ["/v3/poi/", "/v3/poi/", "/v3/referencedata/"]
    assert any("HTTP 500" in m for m in messages)
    assert not any(KEY in m for m in messages)


def test_live_failure_message_never_shows_the_key(httpserver):
    httpserver.expect_request("/v3/poi/").respond_with_data("down", status=503)
    with pytest.raises(SourceHTTPError) as failure:
        ocm.fetch_ocm(_live_settings(httpserver, http_retries=1))
    assert "503" in str(failure.value)
    assert KEY not in str(failure.value) and KEY not in repr(failure.value)


def test_reference_url_sits_beside_the_poi_endpoint():
    assert ocm.reference_url("https://api.openchargemap.io/v3/poi/") == "https://api.openchargemap.io/v3/referencedata/"
    assert ocm.reference_url("https://api.openchargemap.io/v3/poi") == "https://api.openchargemap.io/v3/referencedata/"


def test_the_registry_history_keeps_each_version_of_a_station_from_the_pull_that_gave_it(real_tables):
    """Pulls A, A, B, A of the real response (B: one station's operator and status changed): that station has
    three versions (A from the first pull, B, A again); every other station one."""
    from datetime import datetime, timedelta, timezone

    a = real_tables
    changed = a.stations.iloc[0]["ocm_id"]
    b_stations = a.stations.copy()
    row = b_stations["ocm_id"] == changed
    b_stations.loc[row, "operator_name"] = "Another Operator GmbH"
    b_stations.loc[row, "status_type"] = "Temporarily Unavailable"
    b = ocm.OcmTables(b_stations, a.connections, a.quarantine)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    versions = ocm.station_versions([(a, t0), (a, t0 + timedelta(days=1)), (b, t0 + timedelta(days=2)),
                                     (a, t0 + timedelta(days=3))])
    assert len(versions) == len(a.stations) + 2
    history = versions[versions["ocm_id"] == changed].sort_values("first_pulled_at")
    assert history["operator_name"].tolist()[1] == "Another Operator GmbH"
    assert history["first_pulled_at"].tolist() == [pd.Timestamp(t0 + timedelta(days=d)) for d in (0, 2, 3)]
    assert (versions[versions["ocm_id"] != changed]["first_pulled_at"] == pd.Timestamp(t0)).all()
    assert list(versions.columns) == columns("ocm_stations")
