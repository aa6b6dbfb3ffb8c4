"""`Registry`: the MLflow tracking store and model registry of one data root (see the package docstring)."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np

from ev_assets.lib.ml import core
from ev_assets.lib.ml import gate as gate_rules
from ev_assets.lib.ml import registry_db
from ev_assets.lib.ml.registry.mlflow_state import (
    _file_lock,
    _folder_name,
    _global_mlflow_state,
    _log_files,
    _now_ms,
    _signature,
)
from ev_assets.lib.ml.registry.records import (
    _MAX_PARAM_VALUE,
    ENCODINGS,
    EXPERIMENT_PREFIX,
    GATE_TAG_PREFIX,
    Decision,
    RegisteredVersion,
    _card_summary,
    _model_description,
    _param_value,
    _tag_key,
    _tag_value,
    heldout_hash,
    sanitize_key,
)
from ev_assets.lib.ml.registry_db import CHAMPION, DEFAULT_UI_URL

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient


class Registry:
    """The MLflow tracking store and model registry under one folder (the data root's `mlflow/`)."""

    def __init__(self, root: Path, ui_url: str = DEFAULT_UI_URL, store_uri: str | None = None):
        """`store_uri`: MLflow's backend store elsewhere (EV_MLFLOW_STORE_URI, e.g. postgresql+psycopg2://...);
        unset, SQLite in `<root>/mlflow.db`. Artifacts stay under `<root>/artifacts`."""
        self.root = Path(root).expanduser().resolve()
        self.db_path = self.root / "mlflow.db"
        self.artifacts_dir = self.root / "artifacts"
        self.uri = store_uri or f"sqlite:///{self.db_path}"  # an absolute path gives sqlite:////abs/...
        self.external_store = store_uri is not None
        self.ui_url = ui_url.rstrip("/")
        self._client: MlflowClient | None = None
        self._experiments: dict[str, str] = {}
        self._ready = False

    def __repr__(self) -> str:
        return f"Registry({str(self.root)!r})"

    def exists(self) -> bool:
        """Whether the store is there (an external database is assumed to be; the SQLite file must exist)."""
        return self.external_store or self.db_path.exists()

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
        return registry_db.run_url(self.ui_url, experiment_id, run_id)

    def version_url(self, name: str, version: str | int) -> str:
        return registry_db.version_url(self.ui_url, name, version)

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
            metrics = {**self._metrics(evaluation), **{sanitize_key(k): float(v) for k, v in
                                                       trained.extra_metrics.items() if math.isfinite(float(v))}}
            now = _now_ms()
            client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()],
                             metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])
            client.log_text(run_id, trained.model_card(), "model_card.md")
            client.log_text(run_id, evaluation.table().to_csv(index_label="predictor"), "evaluation.csv")
            client.log_text(run_id, json.dumps(list(trained.features), indent=1), "features.json")
            _log_files(client, run_id, trained.artifacts)
            client.log_text(run_id, json.dumps(trained.encodings, indent=1, sort_keys=True), ENCODINGS)

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
            client.update_registered_model(trained.name, description=_model_description(trained.description, version))
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
    def load_encodings(self, name: str, version: str | int) -> dict[str, dict[str, int]] | None:
        """The category codes bundled with a version (`encodings.json` of its run: {} for a model without learned
        codes), or None for a version logged before codes were bundled."""
        run_id = self.client.get_model_version(name, str(version)).run_id
        if ENCODINGS not in {a.path for a in self.client.list_artifacts(run_id)}:
            return None
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            path = self.client.download_artifacts(run_id, ENCODINGS, folder)
            return json.loads(Path(path).read_text())

    def champion_prediction(self, trained: core.TrainedModel) -> tuple[str | None, np.ndarray | None, str, bool]:
        """(champion version or None, its predictions of `trained`'s held-out rows or None, how it was scored or
        why not, comparable). The champion is scored as it serves: its own booster, on the rows re-coded with its
        own bundled category codes (`TrainedModel.rows_for`), on the columns it was trained on, in its order."""
        version = self._alias_version(trained.name, CHAMPION)
        if version is None:
            return None, None, "the first version: no champion to beat", True
        try:
            booster = self.load_version(trained.name, version, flavor="lightgbm")
            encodings = self.load_encodings(trained.name, version)
        except Exception as exc:  # noqa: BLE001 - recorded as the reason; the champion stays
            return version, None, (f"champion version {version} could not be loaded ({type(exc).__name__}: "
                                   f"{str(exc)[:300]}); the champion stays"), False
        if encodings is None and trained.encodings:
            return version, None, (f"champion version {version} predates bundled category codes, so it cannot be "
                                   "scored as it serves: the champion stays; promote() by hand once judged"), False
        rows = trained.rows_for(encodings or {})
        # LightGBM may rename features (spaces become "_"): read the champion's names through the challenger's
        renamed = dict(zip(trained.booster.feature_name(), trained.features))
        features = [renamed.get(f, f) for f in booster.feature_name()]
        missing = [f for f in features if f not in rows.columns]
        if missing:
            return version, None, (f"NOT COMPARABLE with champion version {version}: it needs features the held-out "
                                   f"rows lack ({', '.join(missing[:10])}{', ...' if len(missing) > 10 else ''}); "
                                   "the champion stays, promote() by hand if the change is intended"), False
        recoded = [c for c in (encodings or {}) if c in features]
        note = (f"with its own codes of {', '.join(recoded)}" if recoded else "no learned codes")
        if features != list(trained.features):
            note += f"; on its own {len(features)} features (the candidate has {len(trained.features)})"
        return version, np.asarray(booster.predict(rows[features]), float), note, True

    def judge(self, trained: core.TrainedModel, *, confidence: float = 0.95, resamples: int = 1000,
              margin_share: float = 0.0) -> gate_rules.GateResult:
        """The gate for `trained` against its strongest baseline and the current champion (see lib/ml/gate.py)."""
        version, prediction, note, comparable = self.champion_prediction(trained)
        return gate_rules.judge(trained, prediction, version, note, confidence=confidence, resamples=resamples,
                                margin_share=margin_share, comparable=comparable)

    def record(self, registered: RegisteredVersion, tags: dict[str, str]) -> None:
        """Write `tags` on the version and on its run."""
        from mlflow.entities import RunTag

        tags = {_tag_key(k): _tag_value(v) for k, v in tags.items()}
        self.client.log_batch(registered.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        for key, value in tags.items():  # (no batch call for version tags)
            self.client.set_model_version_tag(registered.name, registered.version, key, value)

    def decide(self, trained: core.TrainedModel, registered: RegisteredVersion, **options) -> Decision:
        """Judge, record and promote in one call, for scripts and tests without Dagster (the asset graph does the
        same in three steps: the evaluation, its checks, the champion asset). The version takes the alias only
        when it passes the gate and no group gets worse."""
        if self._alias_version(registered.name, CHAMPION) == registered.version:
            decision = Decision(registered.name, registered.version, True,
                                f"version {registered.version} already holds the alias {CHAMPION}")
        else:
            result = self.judge(trained, **options)
            promoted = result.passed and not result.regressions
            reason = result.reason() + ("" if not result.regressions else "; " + result.regression_reason())
            decision = Decision(registered.name, registered.version, promoted, reason, result)
        self.record(registered, decision.tags())
        if decision.promoted:
            self.promote(registered.name, registered.version)
        return decision

    def promote(self, name: str, version: str | int) -> None:
        """Move the alias `champion` to `version` (the gate calls this; also the manual override)."""
        previous = self._alias_version(name, CHAMPION)
        self.client.set_registered_model_alias(name, CHAMPION, str(version))
        if previous is not None and previous != str(version):
            self.client.set_model_version_tag(name, previous, f"{GATE_TAG_PREFIX}replaced_by", str(version))
        # the model's page describes its champion: its card's summary (held-out figures), not the first version's
        summary = _card_summary(self.client.get_model_version(name, str(version)).description or "")
        if summary:
            self.client.update_registered_model(name, description=_model_description(summary, version, champion=True))

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
