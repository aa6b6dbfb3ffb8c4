"""Operators are counted once: the operator dimension and the operator KPIs on the real chargecloud recordings.

The two real polls in ../shared/data/chargecloud (38 cities, 2022-01-11) go through the project's flattener into
the raw tables of a temporary warehouse; dbt builds dim_operator, the operator marts and everything upstream
(models, unit tests, data tests); the marts are published as a snapshot and read through the KPI router.

The expected mapping is worked out here from the recordings with `json` and a Python version of the rule written
from its docs block (`operator_key` in dbt_project/docs/operators.md), never from the SQL. The observed mapping
is also the table of the docs block `operator_mapping`: the test keeps the docs and the data in step.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import quote

import pytest
from ev_assets_tests.fixtures.dbt import query, run_dbt
from ev_assets_tests.fixtures.paths import DBT_PROJECT

pytestmark = pytest.mark.slow  # dbt builds of a warehouse (a minute or more on 2 cores)

DOCS = DBT_PROJECT / "docs" / "operators.md"
RECORDINGS = ("20220111_215824_cp_data_cities.json", "20220111_220822_cp_data_cities.json")
DAY = "2022-01-11"

# --- the rule as its docs block states it --------------------------------------------------------------------
LEGAL_FORMS = {"gmbh", "mbh", "ag", "se", "eg", "kg", "kgaa", "ohg", "gbr", "ug", "haftungsbeschraenkt", "co",
               "ev", "ltd", "inc", "bv", "nv"}
ALIASES = {"dew21": "dortmunderenergieundwasserversorgung",
           "evdenergieversorgungdormagen": "energieversorgungdormagen"}
UNKNOWN = "(unknown)"


def normalized(name: str) -> str:
    """Steps 1-4: trimmed, lower-case, umlauts spelled out, letters and digits, no legal form at the end."""
    text = name.strip().lower()
    for umlaut, spelled in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        text = text.replace(umlaut, spelled)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    words = re.sub(r"[^a-z0-9]+", " ", text).split()
    while len(words) > 1:  # the first word always stays
        if words[-1] in LEGAL_FORMS:
            words.pop()
        elif words[-2:] == ["e", "v"] and len(words) > 2:
            del words[-2:]
        else:
            break
    return "".join(words)


def expected_key(name: str | None) -> str:
    if name is None or not name.strip():
        return UNKNOWN
    key = normalized(name)
    return ALIASES.get(key, key)


# --- the recordings read independently ---------------------------------------------------------------------
def feed_stations(shared_data: Path) -> dict[str, str | None]:
    """station id -> its operator name exactly as the feed spells it (the second poll's, where both have it)."""
    stations: dict[str, str | None] = {}
    for name in RECORDINGS:
        for response in json.loads((shared_data / "chargecloud" / name).read_text("utf-8")).values():
            for station in response.get("data") or []:
                stations[str(station["id"])] = (station.get("operator") or {}).get("name")
    return stations


@pytest.fixture(scope="module")
def recordings(shared_data: Path) -> Path:
    folder = shared_data / "chargecloud"
    if not all((folder / name).is_file() for name in RECORDINGS):
        pytest.skip(f"the real chargecloud recordings {RECORDINGS} are not in {folder}")
    return shared_data


@pytest.fixture(scope="module")
def expected(recordings: Path) -> dict:
    """Per key: its stations, its feed spellings with their station counts, the display name."""
    stations = feed_stations(recordings)
    by_key: dict[str, dict] = defaultdict(lambda: {"stations": set(), "feed": Counter(), "trimmed": Counter()})
    for station_id, name in stations.items():
        entry = by_key[expected_key(name)]
        entry["stations"].add(station_id)
        if name is not None and name.strip():
            entry["feed"][name] += 1
            entry["trimmed"][name.strip()] += 1
    for entry in by_key.values():  # the spelling most stations use; the first alphabetically on a tie
        counts = entry["trimmed"]
        entry["display"] = min(counts, key=lambda s: (-counts[s], s)) if counts else UNKNOWN
    return {"stations": stations, "operators": dict(by_key)}


# --- the warehouse built from the recordings ----------------------------------------------------------------
@pytest.fixture(scope="module")
def built(recordings: Path, tmp_path_factory) -> Path:
    """Raw tables from the two polls through the project's flattener and loader, then `dbt build` of the operator
    marts and everything upstream; returns the data root."""
    from ev_assets.lib import warehouse
    from ev_assets.lib.sources import chargecloud

    data_dir = tmp_path_factory.mktemp("operators_real")
    polls = []
    for name in RECORDINGS:
        path = recordings / "chargecloud" / name
        responses, _failed = chargecloud.read_recording(path)
        slot = chargecloud.floor_slot(chargecloud.poll_time(responses), 10)
        polls.append((responses, slot, str(path)))
    frames = chargecloud.flatten_polls(polls).tables()
    with warehouse.connect(data_dir / "warehouse.duckdb") as con:
        for table, frame in frames.items():
            if table in ("chargingstations", "chargingpoints", "connectors"):
                warehouse.upsert_versions(con, table, frame, chargecloud.item_key(table))
            else:
                warehouse.replace_rows(con, table, frame, "TRUE")

    run = run_dbt(data_dir, "build", "--select", "+dim_operator", "+mart_utilization_operator_daily",
                  "+mart_reliability_daily",
                  "--indirect-selection", "cautious",  # not the tests of models outside the selection
                  dbt_vars={"ev_data_dir": str(data_dir)})
    failed = {r["unique_id"]: r["status"] for r in run["results"] if r["status"] not in ("success", "pass")}
    assert run["returncode"] == 0 and not failed, (failed, run["stdout"][-5000:])
    return data_dir


def dim_operator(data_dir: Path) -> dict[str, dict]:
    rows = query(data_dir, "select operator_key, operator_name, spellings, n_spellings, normalized_names, n_stations "
                           "from marts.dim_operator")
    return {key: {"name": name, "spellings": spellings, "n_spellings": n, "normalized": norm, "n_stations": stations}
            for key, name, spellings, n, norm, stations in rows}


def observed_mapping(data_dir: Path) -> dict[str, tuple[str, dict[str, int]]]:
    """key -> (display name, {feed spelling exactly as in raw: stations}) as the warehouse has them."""
    rows = query(data_dir, """
        select d.operator_key, o.operator_name, r.operator_name, count(distinct r.station_id)
        from raw.chargingstations r
        join marts.dim_station d using (station_id, attr_hash)
        join marts.dim_operator o using (operator_key)
        where d.is_current and r.operator_name is not null
        group by all
    """)
    mapping: dict[str, tuple[str, dict[str, int]]] = {}
    for key, display, spelling, stations in rows:
        mapping.setdefault(key, (display, {}))[1][spelling] = stations
    return mapping


# --- the dimension ---------------------------------------------------------------------------------------------
def test_every_station_has_the_key_the_rule_gives_its_spelling(expected, built):
    stations = dict(query(built, "select station_id, operator_key from marts.dim_station where is_current"))
    assert len(stations) == len(expected["stations"]) > 1000
    assert stations == {s: expected_key(name) for s, name in expected["stations"].items()}


def test_dim_operator_is_one_row_per_operator_with_its_spellings(expected, built):
    operators = dim_operator(built)
    assert set(operators) == set(expected["operators"])
    for key, entry in expected["operators"].items():
        row = operators[key]
        assert row["name"] == entry["display"], key
        assert row["spellings"] == sorted(entry["trimmed"]), key
        assert row["n_stations"] == len(entry["stations"]), key
        assert row["normalized"] == sorted({normalized(s) for s in entry["trimmed"]}), key
    # every station once: the operators' stations add up to the fleet
    assert sum(row["n_stations"] for row in operators.values()) == len(expected["stations"])


def test_spellings_before_and_after(expected, built):
    feed = {name for name in expected["stations"].values() if name}
    trimmed = {name.strip() for name in feed}
    # what the operator marts counted as operators before: the trimmed spellings
    (before,) = query(built, "select count(distinct operator_name) from marts.dim_station where is_current")[0]
    assert (len(feed), len(trimmed), before) == (62, 58, 58)
    assert len(dim_operator(built)) == 47  # 11 of the 58 are another spelling of an operator
    # no station is without an operator name in these polls
    assert UNKNOWN not in dim_operator(built)


def test_true_duplicates_merge(built):
    operators = dim_operator(built)
    rhein = operators["rheinenergie"]
    assert (rhein["name"], rhein["spellings"], rhein["n_stations"]) == (
        "RheinEnergie AG", ["Rhein Energie AG", "RheinEnergie AG", "Rheinenergie", "Rheinenergie AG"], 168)
    deer = operators["deer"]
    assert (deer["name"], deer["spellings"], deer["n_stations"]) == ("deer GmbH", ["Deer GmbH", "deer GmbH"], 117)
    # a leading space, a double space inside, a legal form dropped
    assert operators["stadtwerkekiel"]["spellings"] == ["Stadtwerke Kiel AG"]
    assert operators["stadtwerkekiel"]["n_stations"] == 45
    assert operators["gemeindewerkeniefernoeschelbronn"]["spellings"] == [
        "Gemeindewerke  Niefern Öschelbronn", "Gemeindewerke Niefern Öschelbronn"]
    assert operators["stadtwerkebruchsal"]["spellings"] == ["Stadtwerke Bruchsal", "Stadtwerke Bruchsal GmbH"]
    # the reviewed aliases: an abbreviation beside the full name
    dortmund = operators["dortmunderenergieundwasserversorgung"]
    assert (dortmund["name"], dortmund["n_stations"], dortmund["normalized"]) == (
        "Dortmunder Energie- und Wasserversorgung", 159, ["dew21", "dortmunderenergieundwasserversorgung"])
    dormagen = operators["energieversorgungdormagen"]
    assert (dormagen["n_stations"], dormagen["n_spellings"]) == (11, 2)


def test_distinct_companies_stay_apart(built):
    operators = dim_operator(built)
    for key in ("swfellbachdeer", "stadtwerkekielagstadtwerkeschwentinental", "ews", "evl", "swi", "swkenergie"):
        assert key in operators, key
    # two towns' Stadtwerke never share a key; Kiel has two operators (Stadtwerke Kiel, the joint one)
    towns = defaultdict(set)
    for key, row in operators.items():
        for spelling in row["spellings"]:
            if spelling.startswith("Stadtwerke "):
                towns[key].add(spelling.split()[1])
    assert all(len(names) == 1 for names in towns.values()), towns
    assert (len(towns), len(set().union(*towns.values()))) == (24, 23)
    # no two operators of different cities share a key: each key's stations sit in one city feed
    cities = query(built, "select operator_key, count(distinct city_slug) from marts.dim_station where is_current "
                          "group by 1 having count(distinct city_slug) > 1")
    assert cities == []


def test_the_docs_show_the_observed_mapping(built):
    """The table of the docs block `operator_mapping` is what the warehouse built from the recordings."""
    text = DOCS.read_text("utf-8")
    block = text[text.index("{% docs operator_mapping %}"):]
    block = block[: block.index("{% enddocs %}")]
    documented = {}
    for key, display, spellings in re.findall(r"^\| `([^`]+)` \| (.+?) \| (.+) \|$", block, re.MULTILINE):
        documented[key] = (display, {s: int(n) for s, n in re.findall(r'`"(.*?)"` \((\d+)\)', spellings)})
    assert documented == observed_mapping(built)
    counts = re.search(r"(\d+) spellings in the feed, (\d+) once trimmed, (\d+) operators", " ".join(block.split()))
    assert counts and tuple(map(int, counts.groups())) == (62, 58, 47)


# --- the marts ---------------------------------------------------------------------------------------------------
def test_operator_marts_count_each_operator_once_a_day(expected, built):
    rows = query(built, "select day, operator_key, operator_name, n_stations, n_polls from "
                        "marts.mart_utilization_operator_daily")
    assert {str(day) for day, *_ in rows} == {DAY}
    keys = [key for _, key, *_ in rows]
    names = [name for _, _, name, *_ in rows]
    assert len(keys) == len(set(keys)) == 47 and len(names) == len(set(names))
    operators = dim_operator(built)
    assert all(operators[key]["name"] == name for _, key, name, *_ in rows)
    # every polled station once: the operators' stations and polls add up to the station days
    polled = query(built, "select count(*), sum(n_polls) from marts.mart_utilization_station_daily")[0]
    assert (sum(r[3] for r in rows), sum(r[4] for r in rows)) == polled
    rhein = next(r for r in rows if r[1] == "rheinenergie")
    assert rhein[2:4] == ("RheinEnergie AG", 168)

    reliability = query(built, "select day, city_slug, operator_key, operator_name, n_stations, observed_hours "
                               "from marts.mart_reliability_daily")
    assert len({(d, c, k) for d, c, k, *_ in reliability}) == len(reliability)
    koeln = [r for r in reliability if r[1] == "koeln"]
    assert [(r[2], r[3], r[4]) for r in koeln] == [("rheinenergie", "RheinEnergie AG", 168)]
    (observed,) = query(built, "select sum(observed_hours) from marts.mart_utilization_station_daily")[0]
    assert sum(r[5] for r in reliability) == pytest.approx(observed)


# --- the KPI endpoints -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(built):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from ev_assets.api import kpis as kpi_api
    from ev_assets.lib import snapshot
    from ev_assets.lib.settings import Settings

    settings = Settings(data_dir=built)
    snapshot.publish(built / "warehouse.duckdb", settings.snapshot_dir)
    app = FastAPI()
    app.state.settings = settings
    app.state.snapshot = snapshot.Reader(settings.snapshot_dir)
    app.include_router(kpi_api.router)
    with TestClient(app) as test_client:
        yield test_client


def get(client, url: str):
    response = client.get(url)
    assert response.status_code == 200, (url, response.text)
    return response.json()


@pytest.mark.parametrize("measure", ["utilization", "reliability"])
def test_operator_endpoints_answer_each_operator_once(client, built, measure):
    listed = get(client, f"/kpi/{measure}/operators")
    keys = [row["operator_key"] for row in listed]
    assert len(keys) == len(set(keys)) == 47
    rhein = next(row for row in listed if row["operator_key"] == "rheinenergie")
    assert rhein["operator_name"] == "RheinEnergie AG"
    # the key and every spelling (as the feed has it, spaces and all) name the same operator
    by_key = get(client, f"/kpi/{measure}/operators/rheinenergie")
    assert len(by_key) == 1 and by_key[0]["day"] == DAY and by_key[0]["operator_key"] == "rheinenergie"
    for spelling in ("RheinEnergie AG", "Rheinenergie AG", "Rheinenergie", "Rhein Energie AG", "RHEINENERGIE AG "):
        assert get(client, f"/kpi/{measure}/operators/{quote(spelling, safe='')}") == by_key, spelling
    kiel = get(client, f"/kpi/{measure}/operators/{quote(' Stadtwerke Kiel AG', safe='')}")
    assert [row["operator_key"] for row in kiel] == ["stadtwerkekiel"]
    dortmund = get(client, f"/kpi/{measure}/operators/DEW21%20GmbH")
    assert [row["operator_name"] for row in dortmund] == ["Dortmunder Energie- und Wasserversorgung"]
    bonn = get(client, f"/kpi/{measure}/operators/{quote('Energie- und Wasserversorgung Bonn/Rhein-Sieg GmbH')}")
    assert [row["operator_key"] for row in bonn] == ["energieundwasserversorgungbonnrheinsieg"]
    assert client.get(f"/kpi/{measure}/operators/Stadtwerke%20Atlantis").status_code == 404
