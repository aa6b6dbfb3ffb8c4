"""The docs say what the code does: the README lists every variable the settings read, every raw table and
column; the dbt docs site opens on an overview of the warehouse and its descriptions read as sentences."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from ev_assets.lib import settings, tables
from ev_assets_tests.fixtures.paths import DBT, DBT_PROJECT, REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_every_environment_variable_is_documented():
    source = Path(settings.__file__).read_text()  # Settings.from_env
    names = set(re.findall(r'"((?:EV|OPENCHARGEMAP)_[A-Z_]*[A-Z])"', source))
    names |= {f"EV_SOURCE_{s.upper()}" for s in settings.SOURCES}
    assert len(names) > 15
    assert sorted(n for n in names if f"`{n}`" not in README) == []


def test_every_raw_table_and_column_is_in_the_data_model():
    for name, cols in tables.TABLES.items():
        row = next((line for line in README.splitlines() if line.startswith(f"| `raw.{name}` |")), None)
        assert row is not None, f"raw.{name} missing from the README's data model"
        assert row.rsplit("|", 2)[-2].strip() == ", ".join(c for c, _ in cols), f"columns of raw.{name} differ"


def test_every_warehouse_model_is_in_the_readme():
    models = REPO_ROOT / "dbt_project" / "models"
    names = [p.stem for folder in ("intermediate", "marts") for p in (models / folder).glob("*.sql")]
    assert len(names) > 20
    documented = [n for n in names if f"`intermediate.{n}`" in README or f"`marts.{n}`" in README]
    missing = sorted(set(names) - set(documented) - {"int_energy_hourly_spread", "int_energy_sessions_unioned"})
    assert missing == []


# --- the dbt docs site -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> dict:
    """The dbt project as it is now (`dbt parse` into a temporary target, never a stale dbt_project/target)."""
    out = tmp_path_factory.mktemp("dbt_parse")
    done = subprocess.run(
        [str(DBT), "parse", "--project-dir", str(DBT_PROJECT),
         "--profiles-dir", str(DBT_PROJECT), "--target-path", str(out / "target"), "--log-path", str(out / "logs")],
        cwd=DBT_PROJECT, env={**os.environ, "EV_DATA_DIR": str(out)}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    return json.loads((out / "target" / "manifest.json").read_text())


def test_docs_site_opens_on_an_overview_of_the_warehouse(manifest):
    overview = manifest["docs"].get("doc.ev_assets.__overview__", {}).get("block_contents", "")
    assert "Welcome!" not in overview
    for words in ("staging", "intermediate", "marts", "chargecloud", "Open Charge Map", "OpenStreetMap",
                  "dbt build", "asset check"):
        assert words in overview, f"the overview does not mention {words}"
    # every model it names exists (a `mart_utilization_*` names a family)
    models = {node["name"] for node in manifest["nodes"].values() if node["resource_type"] == "model"}
    named = set(re.findall(r"`((?:stg|int|fct|dim|mart)_\w+?)\*?`", overview))
    assert {"fct_charging_sessions", "mart_reliability_daily", "dim_station"} <= named
    assert sorted(n for n in named if not any(m.startswith(n) for m in models)) == []


def descriptions(manifest: dict):
    """(where, text) of every description of the project's models and sources, and of their columns."""
    for kind in ("nodes", "sources"):
        for unique_id, node in manifest[kind].items():
            if node["resource_type"] in ("model", "source"):
                yield unique_id, node.get("description") or ""
                for column, info in node.get("columns", {}).items():
                    yield f"{unique_id}.{column}", info.get("description") or ""


def test_docs_blocks_stand_as_paragraphs_never_spliced_into_a_sentence(manifest):
    """A docs block is a whole definition ("A **charging station** is ..."). Put in the middle of a sentence it
    garbles it ("Id of the A **charging station** is a site ... opening times. the point belongs to."), so each
    use must be a paragraph of its own: nothing but a blank line (or the start / end) on either side."""
    blocks = {
        doc["name"]: doc["block_contents"].strip()
        for doc in manifest["docs"].values()
        if doc["package_name"] == "ev_assets" and not doc["name"].startswith("__")
    }
    spliced = []
    for where, text in descriptions(manifest):
        for name, block in blocks.items():
            for found in re.finditer(re.escape(block), text):
                before, after = text[: found.start()], text[found.end():]
                if not (before == "" or before.endswith("\n\n")) or not (after == "" or after.startswith("\n\n")):
                    spliced.append(f"{where}: ...{before[-30:]!r} + doc({name!r}) + {after[:30]!r}...")
    assert spliced == []


def test_make_docs_serves_the_site_where_the_ui_links(dbt_manifest):
    from ev_assets.defs.warehouse.dbt import DOCS_URL

    makefile = (REPO_ROOT / "Makefile").read_text()
    recipe = re.search(r"^docs:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe, "no `docs` target in the Makefile"
    host, port = re.fullmatch(r"http://([\d.]+):(\d+)/", DOCS_URL).groups()
    assert f"http.server {port} --bind {host} --directory \"$(EV_DATA_DIR)/docs\"" in recipe.group(1)
    assert "| `make docs` |" in README and f"{host}:{port}" in README

