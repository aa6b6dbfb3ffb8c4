"""The MLflow model registry of one data root, and the champion gate. No Dagster here.

`Registry(settings.mlflow_dir)` keeps its store in `<root>/mlflow.db` (sqlite, absolute URI) and its
artifacts under `<root>/artifacts/<model name>/`. One experiment per registered model, named
`ev-assets/<model name>`.

- `ensure(names)` creates the schema and the experiments once, under a file lock, before any parallel work (on a
  fresh database, two processes running MLflow's migrations at once can leave it unusable). Idempotent; every
  other method calls it once per `Registry` object.
- `register(trained, tags)` logs one run (params, metrics of the model and of each baseline, features, a hash of
  the held-out rows, the caller's tags, the model card, the evaluation table) and the LightGBM booster as a new
  version of the registered model `trained.name`.
- `decide(trained, registered)` is the champion gate: the new version takes the alias `champion` only if it beats
  its baselines and the current champion, both scored on the same held-out rows. The decision is written to the
  version's and the run's tags either way.
- `champion(name)`, `load_champion(name)`, `load_version(name, version)`: what serving and monitoring read.

Everything goes through an `MlflowClient` with explicit tracking and registry URIs, so several data roots can be
used in one process. The one exception is `mlflow.<flavor>.log_model`, which only works on MLflow's global
tracking URI and active run: it runs inside `_global_mlflow_state`, which sets the global URIs under a
process-wide lock and restores them (and their environment variables) afterwards. Code elsewhere in the process
that reads MLflow's global URI at that very moment would see this root's. Loading resolves `models:/` through
this registry's client for the same reason.

`import mlflow` takes seconds, so it happens inside the methods, not when this module is imported.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator
from urllib.parse import quote

import numpy as np
import pandas as pd

from ev_assets.lib.ml import core
from ev_assets.lib.settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient

# Nothing of the platform phones home: MLflow's usage telemetry is off in every process that uses the registry.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

DEFAULT_UI_URL = Settings().mlflow_url  # `make mlflow` serves the UI here
CHAMPION = "champion"
EXPERIMENT_PREFIX = "ev-assets/"
GATE_TAG_PREFIX = "champion_gate."

_MAX_PARAM_VALUE = 6000  # MLflow's limit for a param value
_MAX_TAG_VALUE = 5000  # below MLflow's limits for run tags (8000) and version tags
_GLOBAL_LOCK = threading.RLock()  # guards MLflow's process-global tracking URI and active run


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    experiment_id: str
    run_url: str
    version_url: str


@dataclass(frozen=True)
class Decision:
    name: str
    version: str
    promoted: bool  # whether this version holds the `champion` alias after the decision
    reason: str
    metric: str
    challenger_score: float
    champion_version: str | None  # the champion it was compared with (None: there was none)
    champion_score: float | None  # that champion's score on the same held-out rows (None: not scored)
    beats_baselines: bool

    def tags(self) -> dict[str, str]:
        """The decision as MLflow tags (written to the version and to its run)."""
        fmt = lambda v: "" if v is None else (repr(v) if isinstance(v, float) else str(v))  # noqa: E731
        return {
            f"{GATE_TAG_PREFIX}decision": "promoted" if self.promoted else "not promoted",
            f"{GATE_TAG_PREFIX}reason": self.reason[:_MAX_TAG_VALUE],
            f"{GATE_TAG_PREFIX}metric": self.metric,
            f"{GATE_TAG_PREFIX}challenger_score": fmt(self.challenger_score),
            f"{GATE_TAG_PREFIX}champion_version": fmt(self.champion_version),
            f"{GATE_TAG_PREFIX}champion_score": fmt(self.champion_score),
            f"{GATE_TAG_PREFIX}beats_baselines": str(self.beats_baselines).lower(),
        }


def sanitize_key(name: str) -> str:
    """A metric / param name MLflow accepts on every platform: lower-case letters, digits, `_`, `.`, `-`, `/`."""
    key = re.sub(r"[^a-z0-9_.\-/]+", "_", str(name).strip().lower()).strip("_")
    return key[:250] or "_"


def heldout_hash(X: pd.DataFrame, y: pd.Series) -> str:
    """SHA-256 of the held-out rows (column names, feature values, target), independent of the index."""
    digest = hashlib.sha256()
    digest.update(json.dumps([str(c) for c in X.columns]).encode())
    digest.update(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes())
    digest.update(pd.util.hash_pandas_object(pd.Series(np.asarray(y)), index=False).to_numpy().tobytes())
    return digest.hexdigest()


class Registry:
    """The MLflow tracking store and model registry under one folder (the data root's `mlflow/`)."""

    def __init__(self, root: Path, ui_url: str = DEFAULT_UI_URL):
        self.root = Path(root).expanduser().resolve()
        self.db_path = self.root / "mlflow.db"
        self.artifacts_dir = self.root / "artifacts"
        self.uri = f"sqlite:///{self.db_path}"  # an absolute path gives sqlite:////abs/...
        self.ui_url = ui_url.rstrip("/")
        self._client: MlflowClient | None = None
        self._experiments: dict[str, str] = {}
        self._ready = False

    def __repr__(self) -> str:
        return f"Registry({str(self.root)!r})"

    # --- setup ---------------------------------------------------------------------------------------
    def ensure(self, names: Iterable[str] = ()) -> None:
        """Create the schema and the experiments of `names` if they are missing. Safe to call again, and from
        several processes at once (a file lock beside the database serialises them)."""
        if not self._ready:
            self.root.mkdir(parents=True, exist_ok=True)
            with _file_lock(self.root / "mlflow.db.lock"):
                from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

                # Creating the store runs the migrations on a fresh database, and creates the Default
                # experiment with its artifacts under this root (not under the current directory).
                SqlAlchemyStore(self.uri, self.artifacts_dir.as_uri())
            self._ready = True
        for name in names:
            self.experiment_id(name)  # a concurrent creation by another process is handled there

    @property
    def client(self) -> "MlflowClient":
        if self._client is None:
            if not self._ready:
                self.ensure()
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    def experiment_id(self, name: str) -> str:
        """The experiment of a registered model (created with its artifact folder under this root if missing)."""
        if name in self._experiments:
            return self._experiments[name]
        from mlflow.exceptions import MlflowException

        experiment_name = EXPERIMENT_PREFIX + name
        experiment = self.client.get_experiment_by_name(experiment_name)
        if experiment is None:
            location = (self.artifacts_dir / _folder_name(name)).as_uri()
            try:
                experiment_id = self.client.create_experiment(experiment_name, artifact_location=location)
            except MlflowException:  # created meanwhile by another process
                experiment = self.client.get_experiment_by_name(experiment_name)
                if experiment is None:
                    raise
                experiment_id = experiment.experiment_id
        else:
            experiment_id = experiment.experiment_id
        self._experiments[name] = experiment_id
        return experiment_id

    # --- links ---------------------------------------------------------------------------------------
    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_url}/#/experiments/{experiment_id}/runs/{run_id}"

    def version_url(self, name: str, version: str | int) -> str:
        return f"{self.ui_url}/#/models/{quote(name, safe='')}/versions/{version}"

    def _registered(self, name: str, version: str, run_id: str, experiment_id: str | None = None) -> RegisteredVersion:
        if experiment_id is None:
            experiment_id = self.client.get_run(run_id).info.experiment_id
        return RegisteredVersion(name=name, version=str(version), run_id=run_id, experiment_id=experiment_id,
                                 run_url=self.run_url(experiment_id, run_id),
                                 version_url=self.version_url(name, version))

    # --- register ------------------------------------------------------------------------------------
    def register(self, trained: core.TrainedModel, tags: dict[str, str] | None = None) -> RegisteredVersion:
        """Log one run for `trained` and register its booster as a new version of `trained.name`.

        `tags` (e.g. the Dagster run id, upstream data versions) go on the run and on the version."""
        import lightgbm
        import mlflow
        import mlflow.lightgbm
        from mlflow.entities import Metric, Param

        experiment_id = self.experiment_id(trained.name)
        client = self.client
        evaluation = trained.evaluation
        caller_tags = {_tag_key(k): _tag_value(v) for k, v in (tags or {}).items()}
        run_tags = {
            **caller_tags,
            "model_name": trained.name,
            "task": trained.task,
            "primary_metric": evaluation.primary,
            "beats_baselines": str(evaluation.beats_baselines).lower(),
            "verdict": _tag_value(evaluation.verdict()),
        }
        run = client.create_run(experiment_id, run_name=trained.name, tags=run_tags)
        run_id = run.info.run_id
        try:
            params = self._params(trained)
            metrics = self._metrics(evaluation)
            now = _now_ms()
            client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()],
                             metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])
            client.log_text(run_id, trained.model_card(), "model_card.md")
            client.log_text(run_id, evaluation.table().to_csv(index_label="predictor"), "evaluation.csv")
            client.log_text(run_id, json.dumps(list(trained.features), indent=1), "features.json")

            X = trained.test_X[trained.features]
            example = X.head(5)
            signature = _signature(example, trained.booster.predict(example))
            # nested=True: resuming our own run must not fail when the caller has a run of its own open
            with _global_mlflow_state(self.uri), mlflow.start_run(run_id=run_id, nested=True):
                info = mlflow.lightgbm.log_model(
                    trained.booster, name="model", signature=signature, input_example=example,
                    registered_model_name=trained.name, tags=caller_tags or None,
                    pip_requirements=[f"lightgbm=={lightgbm.__version__}"],
                )
        except BaseException:
            with contextlib.suppress(Exception):
                client.set_terminated(run_id, "FAILED")
            raise
        version = str(info.registered_model_version)
        client.update_model_version(trained.name, version, description=trained.model_card())
        client.set_model_version_tag(trained.name, version, "heldout_sha256",
                                     heldout_hash(trained.test_X[trained.features], trained.test_y))
        if trained.description and not client.get_registered_model(trained.name).description:
            client.update_registered_model(trained.name, description=trained.description)
        client.set_tag(run_id, "registered_version", version)
        return self._registered(trained.name, version, run_id, experiment_id)

    @staticmethod
    def _params(trained: core.TrainedModel) -> dict[str, str]:
        params = {sanitize_key(k): _param_value(v) for k, v in trained.params.items()}
        features = ",".join(trained.features)
        ours = {
            "n_features": str(len(trained.features)),
            "train_rows": str(trained.train_rows),
            "heldout_rows": str(len(trained.test_y)),
            "heldout_sha256": heldout_hash(trained.test_X[trained.features], trained.test_y),
            "booster_trees": str(trained.booster.num_trees()),
            **({"features": features} if len(features) <= _MAX_PARAM_VALUE else {}),  # else: features.json
            **{f"split_{sanitize_key(k)}": _param_value(v) for k, v in trained.splits.items()},
        }
        for key, value in ours.items():
            params[key if key not in params else f"ev_{key}"] = value
        return params

    @staticmethod
    def _metrics(evaluation: core.Evaluation) -> dict[str, float]:
        metrics = {f"test_{sanitize_key(m)}": v for m, v in evaluation.model.items()}
        for baseline, scores in evaluation.baselines.items():
            metrics.update({f"baseline_{sanitize_key(baseline)}_test_{sanitize_key(m)}": v for m, v in scores.items()})
        return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}

    # --- the champion gate ---------------------------------------------------------------------------
    def decide(self, trained: core.TrainedModel, registered: RegisteredVersion, margin: float = 0.0) -> Decision:
        """Give `registered` the alias `champion` if it beats its baselines and the current champion on the
        same held-out rows (`trained.test_X`, `trained.test_y`) by more than `margin` (in units of the primary
        metric). A version that is registered but not promoted keeps its tags saying why.

        Both scores are computed here the same way: `core.score(primary, test_y, booster.predict(rows))`.
        The champion is loaded by its pinned version and scored on the columns it was trained on (its booster's
        feature names), in its own order. If the held-out rows lack one of them, the two are not comparable and
        the challenger is NOT promoted (the reason says so): promote it by hand with `promote()` once you have
        judged it. A champion trained on different features that the rows do hold is compared as usual.
        """
        name, version, metric = registered.name, registered.version, trained.evaluation.primary
        challenger_score = core.score(metric, trained.test_y, trained.booster.predict(trained.test_X[trained.features]))
        beats_baselines = bool(trained.evaluation.beats_baselines)
        current = self._alias_version(name, CHAMPION)
        champion_score: float | None = None
        if current == version:
            promoted, reason = True, f"version {version} already holds the alias {CHAMPION}"
        else:
            beats_champion, versus, champion_score = (True, "the first version: no champion to beat", None) if current is None else \
                self._against_champion(trained, name, current, metric, challenger_score, margin)
            promoted = beats_baselines and beats_champion
            reason = f"{trained.evaluation.verdict()}; {versus}"
        decision = Decision(name=name, version=version, promoted=promoted, reason=reason, metric=metric,
                            challenger_score=challenger_score, champion_version=current,
                            champion_score=champion_score, beats_baselines=beats_baselines)
        tags = {**decision.tags(), f"{GATE_TAG_PREFIX}margin": repr(float(margin)),
                f"{GATE_TAG_PREFIX}decided_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        from mlflow.entities import RunTag

        self.client.log_batch(registered.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        for key, value in tags.items():  # (no batch call for version tags)
            self.client.set_model_version_tag(name, version, key, value)
        if promoted and current != version:
            self.promote(name, version)
        return decision

    def _against_champion(self, trained: core.TrainedModel, name: str, champion_version: str, metric: str,
                          challenger_score: float, margin: float) -> tuple[bool, str, float | None]:
        """(beats the champion, why, the champion's score on the held-out rows or None if it cannot be scored)"""
        try:
            booster = self.load_version(name, champion_version, flavor="lightgbm")
        except Exception as exc:  # noqa: BLE001 - recorded as the reason; the champion stays
            return False, (f"champion version {champion_version} could not be loaded ({type(exc).__name__}: "
                           f"{str(exc)[:300]}); the champion stays"), None
        # LightGBM may rename features (spaces become "_"): read the champion's names through the challenger's
        renamed = dict(zip(trained.booster.feature_name(), trained.features))
        champion_features = [renamed.get(f, f) for f in booster.feature_name()]
        missing = [f for f in champion_features if f not in trained.test_X.columns]
        if missing:
            return False, (f"NOT COMPARABLE with champion version {champion_version}: it needs features the "
                           f"held-out rows lack ({', '.join(missing[:10])}{', ...' if len(missing) > 10 else ''}); "
                           f"the champion stays, promote() by hand if the change is intended"), None
        champion_score = core.score(metric, trained.test_y, booster.predict(trained.test_X[champion_features]))
        note = "" if champion_features == list(trained.features) else (
            f"; the champion uses other features ({len(champion_features)} vs {len(trained.features)}), each "
            f"model was scored with its own")
        lower = core.lower_is_better(metric)
        bar = champion_score - margin if lower else champion_score + margin
        beats = core.better(metric, challenger_score, bar)
        words = (f"{'beats' if beats else 'does NOT beat'} champion version {champion_version}: {metric} "
                 f"{challenger_score:.6g} vs {champion_score:.6g} on the same {len(trained.test_y):,} held-out rows "
                 f"({'lower' if lower else 'higher'} is better, margin {margin:g}){note}")
        return beats, words, champion_score

    def promote(self, name: str, version: str | int) -> None:
        """Move the alias `champion` to `version` (the gate calls this; also the manual override)."""
        previous = self._alias_version(name, CHAMPION)
        self.client.set_registered_model_alias(name, CHAMPION, str(version))
        if previous is not None and previous != str(version):
            self.client.set_model_version_tag(name, previous, f"{GATE_TAG_PREFIX}replaced_by", str(version))

    # --- reading -------------------------------------------------------------------------------------
    def champion(self, name: str) -> RegisteredVersion | None:
        version = self._alias_version(name, CHAMPION)
        if version is None:
            return None
        model_version = self.client.get_model_version(name, version)
        return self._registered(name, version, model_version.run_id)

    def versions(self, name: str) -> list[str]:
        """The versions of a registered model, oldest first ([] if it has none)."""
        found = self.client.search_model_versions(f"name = '{name}'")
        return sorted((str(v.version) for v in found), key=int)

    def load_champion(self, name: str):
        """`models:/<name>@champion` as an MLflow pyfunc model (`.predict(DataFrame of the features)`, with the
        signature's column names and types enforced). The alias is resolved once and that pinned version loaded."""
        version = self._alias_version(name, CHAMPION)
        if version is None:
            raise LookupError(f"registered model {name!r} has no {CHAMPION} in {self.root}")
        return self.load_version(name, version)

    def load_version(self, name: str, version: str | int, flavor: str = "pyfunc"):
        """`models:/<name>/<version>` as a pyfunc model, or as a `lightgbm.Booster` with flavor="lightgbm".

        The version is resolved to its artifact folder through this registry's client: MLflow's own `models:/`
        resolution reads the process-global registry URI (and would open `./mlflow.db` of the current directory)."""
        if flavor not in ("pyfunc", "lightgbm"):
            raise ValueError(f"flavor must be 'pyfunc' or 'lightgbm', not {flavor!r}")
        location = self.client.get_model_version_download_uri(name, str(version))
        if flavor == "lightgbm":
            import mlflow.lightgbm

            return mlflow.lightgbm.load_model(location)
        import mlflow.pyfunc

        return mlflow.pyfunc.load_model(location)

    def _alias_version(self, name: str, alias: str) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(name, alias).version)
        except MlflowException:  # no such alias, or no such registered model
            return None


# --- helpers -----------------------------------------------------------------------------------------------
def _signature(example: pd.DataFrame, prediction):
    import warnings

    from mlflow.models import infer_signature

    with warnings.catch_warnings():
        # "integer columns cannot hold missing values": the serving code builds features like the training code
        warnings.simplefilter("ignore", UserWarning)
        return infer_signature(example, np.asarray(prediction))


@contextlib.contextmanager
def _global_mlflow_state(uri: str) -> Iterator[None]:
    """MLflow's global tracking and registry URI set to `uri` for the block, then restored (with their
    environment variables and the active experiment), under a process-wide lock. These are private attributes of
    MLflow 3.17 (`mlflow.tracking._tracking_service.utils._tracking_uri`, ...): check them when upgrading."""
    import mlflow
    from mlflow.tracking import fluent
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    with _GLOBAL_LOCK:
        env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID")}
        old_tracking, old_registry = tracking_utils._tracking_uri, registry_utils._registry_uri
        old_experiment = fluent._active_experiment_id  # start_run(run_id) refuses a different active experiment
        try:
            fluent._active_experiment_id = None
            mlflow.set_tracking_uri(uri)
            mlflow.set_registry_uri(uri)
            yield
        finally:
            mlflow.set_tracking_uri(old_tracking)
            registry_utils._registry_uri = old_registry
            fluent._active_experiment_id = old_experiment
            for key, value in env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _folder_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "model"


def _tag_key(key) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-/ ]+", "_", str(key)).strip()[:250] or "_"


def _tag_value(value) -> str:
    return str(value)[:_MAX_TAG_VALUE]


def _param_value(value) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    return text[:_MAX_PARAM_VALUE]


def _now_ms() -> int:
    return int(datetime.now(timezone.utc).timestamp() * 1000)
