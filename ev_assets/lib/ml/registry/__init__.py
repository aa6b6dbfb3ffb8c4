"""The MLflow model registry of one data root, and the champion gate. No Dagster here.

`Registry(settings.mlflow_dir)` keeps its store in `<root>/mlflow.db` (sqlite, absolute URI) and its
artifacts under `<root>/artifacts/<model name>/`. One experiment per registered model, named
`ev-assets/<model name>`.

- `ensure(names)` creates the schema and the experiments once, under a file lock, before any parallel work (on a
  fresh database, two processes running MLflow's migrations at once can leave it unusable). Idempotent; every
  other method calls it once per `Registry` object.
- `register(trained, tags)` logs one run (params, metrics of the model and of each baseline, features, a hash of
  the held-out rows, the caller's tags, the model card, the evaluation table, the category codes `encodings.json`)
  and the LightGBM booster as a new version of the registered model `trained.name`, without the alias.
- `champion_prediction(trained)` scores the current champion as it serves (its booster, its own bundled codes) on
  `trained`'s held-out rows; `judge(trained)` runs the gate (lib/ml/gate.py) on that; `record(registered, tags)`
  writes the decision's tags; `promote(name, version)` moves the alias. The asset graph does these in three
  assets (ev_assets/defs/ml/models.py); `decide(trained, registered)` does all of it in one call, for scripts and
  tests.
- `champion(name)`, `load_champion(name)`, `load_version(name, version)`, `load_encodings(name, version)`: what
  monitoring reads (the service and the dashboard read champions without MLflow, through `registry_db`).

Everything goes through an `MlflowClient` with explicit tracking and registry URIs, so several data roots can be
used in one process. The one exception is `mlflow.<flavor>.log_model`, which only works on MLflow's global
tracking URI and active run: it runs inside `_global_mlflow_state`, which sets the global URIs under a
process-wide lock and restores them (and their environment variables) afterwards. Code elsewhere in the process
that reads MLflow's global URI at that very moment would see this root's. Loading resolves `models:/` through
this registry's client for the same reason.

`import mlflow` takes seconds, so it happens inside the methods, not when this package is imported.

`store` holds `Registry`; `records` what it writes and returns (`RegisteredVersion`, `Decision`, MLflow-safe keys
and values); `mlflow_state` the process-global MLflow state and the other MLflow helpers.
"""

from ev_assets.lib.ml.registry.records import (
    ENCODINGS,
    GATE_TAG_PREFIX,
    Decision,
    RegisteredVersion,
    heldout_hash,
    sanitize_key,
)
from ev_assets.lib.ml.registry.store import Registry
from ev_assets.lib.ml.registry_db import DEFAULT_UI_URL

__all__ = ["DEFAULT_UI_URL", "ENCODINGS", "GATE_TAG_PREFIX", "Decision", "RegisteredVersion", "Registry",
           "heldout_hash", "sanitize_key"]
