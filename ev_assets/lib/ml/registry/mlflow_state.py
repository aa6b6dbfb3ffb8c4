"""MLflow around the registry: its telemetry off, its process-global tracking URI and active run set for one block
under a lock (`_global_mlflow_state`), a cross-process file lock, the model signature, artifacts from bytes."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

# Nothing of the platform phones home: MLflow's usage telemetry is off in every process that uses the registry.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

_GLOBAL_LOCK = threading.RLock()  # guards MLflow's process-global tracking URI and active run


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


def _log_files(client, run_id: str, files: dict[str, bytes]) -> None:
    """Log each (name, content) as an artifact of the run (e.g. the feature-importance chart)."""
    import tempfile

    if not files:
        return
    with tempfile.TemporaryDirectory() as folder:
        for name, content in files.items():
            path = Path(folder) / name
            path.write_bytes(content)
            client.log_artifact(run_id, str(path))


def _folder_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "model"


def _now_ms() -> int:
    return int(datetime.now(timezone.utc).timestamp() * 1000)
