"""The model registry of a data root read straight from MLflow's backend store, without importing MLflow.

Readers that only look up champions (the service's `ChampionStore`, the dashboard's Station and Models pages) need
a few rows: which version holds the alias `champion`, where its booster file is, the run's metrics and tags.
Importing MLflow and opening its store (`Registry.client`) costs seconds; these queries cost milliseconds. The
SQLite file (the default, `<data root>/mlflow/mlflow.db`) is opened read-only (`mode=ro`), so a reader never
creates or migrates it and never blocks the ML job for longer than one query. A store elsewhere
(EV_MLFLOW_STORE_URI, e.g. PostgreSQL) is read through SQLAlchemy, which MLflow's SQL store brings. Writing
(register, promote) stays with `ev_assets.lib.ml.registry.Registry`.

The tables read are those of the pinned MLflow (3.x): `registered_model_aliases`, `model_versions` (with
`storage_location`, the version's artifact folder), `model_version_tags`, `runs`, `latest_metrics`, `params` and
`tags`. A changed schema is a database error, which the callers report (the store's `/health`, a page's note);
the service and dashboard tests catch it on an upgrade.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, unquote, urlparse

from ev_assets.lib.settings import Settings

CHAMPION = "champion"
DEFAULT_UI_URL = Settings().mlflow_url  # `make mlflow` serves the UI here
BOOSTER_FILE = "model.lgb"  # the lightgbm flavor's file in a version's artifact folder (MLmodel: data)


@dataclass(frozen=True)
class VersionRow:
    """One registered version: its run, its artifact folder and its tags (e.g. the champion gate's)."""

    name: str
    version: str
    run_id: str
    model_dir: Path | None
    created_ms: int | None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def booster_file(self) -> Path | None:
        return None if self.model_dir is None else self.model_dir / BOOSTER_FILE


@dataclass(frozen=True)
class RunRow:
    run_id: str
    experiment_id: str
    start_ms: int | None
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    artifact_dir: Path | None = None  # the run's artifacts (a `file://` store), e.g. the interval files


def run_url(ui_url: str, experiment_id: str, run_id: str) -> str:
    """The run's page in the MLflow UI (`make mlflow`)."""
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def version_url(ui_url: str, name: str, version: str | int) -> str:
    """The registered version's page in the MLflow UI."""
    return f"{ui_url.rstrip('/')}/#/models/{quote(name, safe='')}/versions/{version}"


def _folder(location: str | None) -> Path | None:
    """A `file://` artifact location as a path (None for other stores)."""
    if not location:
        return None
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return Path(location) if not parsed.scheme else None


def _sqlite_path(store_uri: str | None) -> Path | None:
    """The file a `sqlite:///relative.db` or `sqlite:////absolute.db` store URI names, as SQLAlchemy reads it."""
    if not store_uri or not store_uri.startswith("sqlite:///"):
        return None
    from sqlalchemy.engine import make_url

    return Path(make_url(store_uri).database)


class RegistryDB:
    """Read-only queries on MLflow's backend store: `<root>/mlflow.db`, or `store_uri` when one is set."""

    def __init__(self, root: Path, store_uri: str | None = None):
        self.root = Path(root)
        self.db_path = _sqlite_path(store_uri) or self.root / "mlflow.db"
        self.store_uri = store_uri if store_uri and not store_uri.startswith("sqlite") else None
        self._engine = None

    @property
    def where(self) -> str:
        """The store, as a message names it (a URL without its password)."""
        if self.store_uri is None:
            return str(self.db_path)
        from sqlalchemy.engine import make_url

        return make_url(self.store_uri).render_as_string(hide_password=True)

    def exists(self) -> bool:
        """Whether there is a store to read (a server store is assumed to be: a connection error says otherwise)."""
        return self.store_uri is not None or self.db_path.exists()

    def stamp(self) -> tuple | None:
        """A value that changes with every write: the file's modification time and size, or on a server store the
        newest version's update time, the number of versions and the aliases (None without a store)."""
        if self.store_uri is None:
            try:
                stat = self.db_path.stat()
            except FileNotFoundError:
                return None
            return stat.st_mtime_ns, stat.st_size
        with self.connect() as con:
            versions = tuple(_execute(con, "SELECT max(last_updated_time), count(*) FROM model_versions").fetchone())
            aliases = tuple(map(tuple, _execute(con, "SELECT name, alias, version FROM registered_model_aliases "
                                                     "ORDER BY name, alias").fetchall()))
        return versions, aliases

    @contextlib.contextmanager
    def connect(self) -> Iterator:
        """A connection to the store: sqlite3's, or SQLAlchemy's for a server store (queries go through `_execute`)."""
        if self.store_uri is not None:
            if self._engine is None:
                import sqlalchemy

                self._engine = sqlalchemy.create_engine(self.store_uri, pool_pre_ping=True)
            with self._engine.connect() as con:
                yield con
            return
        if not self.exists():
            raise FileNotFoundError(f"no model registry at {self.db_path} yet")
        con = sqlite3.connect(f"{self.db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
        try:
            yield con
        finally:
            con.close()

    # --- versions ---------------------------------------------------------------------------------------------
    def champion(self, name: str, con=None) -> VersionRow | None:
        """The version holding the alias `champion` of `name`, or None."""
        with self._con(con) as c:
            found = _execute(c, "SELECT version FROM registered_model_aliases WHERE name = :name AND alias = :alias",
                             {"name": name, "alias": CHAMPION}).fetchone()
            if found is None:
                return None
            versions = self._versions(c, name, str(found[0]))
        return versions[0] if versions else None

    def versions(self, name: str, con=None) -> list[VersionRow]:
        """Every version of `name`, oldest first ([] when it has none)."""
        with self._con(con) as c:
            return self._versions(c, name, None)

    def _versions(self, con, name: str, version: str | None) -> list[VersionRow]:
        rows = _execute(
            con, "SELECT version, run_id, storage_location, creation_time FROM model_versions WHERE name = :name"
            + (" AND version = :version" if version is not None else "") + " ORDER BY version",
            {"name": name, **({"version": int(version)} if version is not None else {})},
        ).fetchall()
        tags: dict[str, dict[str, str]] = {}
        for key, value, v in _execute(con, "SELECT key, value, version FROM model_version_tags WHERE name = :name",
                                      {"name": name}):
            tags.setdefault(str(v), {})[key] = value
        return [VersionRow(name, str(v), run_id, _folder(location), created, tags.get(str(v), {}))
                for v, run_id, location, created in rows]

    # --- runs -------------------------------------------------------------------------------------------------
    def run(self, run_id: str, con=None) -> RunRow:
        with self._con(con) as c:
            run = {"run": run_id}
            found = _execute(c, "SELECT experiment_id, start_time, artifact_uri FROM runs WHERE run_uuid = :run",
                             run).fetchone()
            if found is None:
                raise LookupError(f"run {run_id} is not in {self.where}")
            metrics = {key: float("nan") if is_nan else value for key, value, is_nan in _execute(
                c, "SELECT key, value, is_nan FROM latest_metrics WHERE run_uuid = :run", run)}
            params = {k: v for k, v in _execute(c, "SELECT key, value FROM params WHERE run_uuid = :run", run)}
            tags = {k: v for k, v in _execute(c, "SELECT key, value FROM tags WHERE run_uuid = :run", run)}
        return RunRow(run_id, str(found[0]), found[1], metrics, params, tags, _folder(found[2]))

    @contextlib.contextmanager
    def _con(self, con) -> Iterator:
        if con is not None:
            yield con
        else:
            with self.connect() as fresh:
                yield fresh


def _execute(con, sql: str, params: dict | None = None):
    """`sql` with named parameters (`:name`) on a sqlite3 or a SQLAlchemy connection."""
    if isinstance(con, sqlite3.Connection):
        return con.execute(sql, params or {})
    import sqlalchemy

    return con.execute(sqlalchemy.text(sql), params or {})


def load_booster(version: VersionRow):
    """The version's LightGBM booster, read from its artifact folder (no MLflow)."""
    import lightgbm as lgb

    path = version.booster_file
    if path is None or not path.exists():
        raise FileNotFoundError(f"{version.name} version {version.version}: no booster file {path}")
    return lgb.Booster(model_file=str(path))
