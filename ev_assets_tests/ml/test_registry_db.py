"""Where the champions' reader finds MLflow's backend store."""

import sqlite3

from ev_assets.lib.ml.registry_db import RegistryDB


def test_a_sqlite_store_uri_names_its_own_file(tmp_path):
    elsewhere = tmp_path / "elsewhere.db"
    sqlite3.connect(elsewhere).close()
    db = RegistryDB(tmp_path / "root", store_uri=f"sqlite:///{elsewhere}")  # sqlite:////abs/path
    assert db.db_path == elsewhere and db.exists() and db.where == str(elsewhere)
    assert RegistryDB(tmp_path / "root").db_path == tmp_path / "root" / "mlflow.db"  # no URI: under the root
    assert not RegistryDB(tmp_path / "root").exists()
