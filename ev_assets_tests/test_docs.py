"""The README documents what the code does: every variable the settings read, every raw table and column."""

import re

from ev_assets.lib import settings, tables
from ev_assets_tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_every_environment_variable_is_documented():
    source = (REPO_ROOT / "ev_assets" / "lib" / "settings.py").read_text()
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
