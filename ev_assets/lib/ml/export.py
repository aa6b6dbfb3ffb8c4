"""ONNX export of a trained LightGBM model, with a parity check against the booster and a latency probe.

`to_onnx(trained, path)` converts the booster with onnxmltools (opset 15, no ZipMap), runs ONNX Runtime on the
held-out rows as float32 and compares with the booster's own predictions (on the rows as they are):
classification compares the probability of class 1, regression the value. Parity holds when every row satisfies
|onnx - booster| <= atol + rtol * |booster| (numpy.allclose; atol = rtol = 1e-4 by default, see
../shared/ML-STACK.md). The file is written either way: the caller gates on `parity_ok`.

Known traps (ML-STACK.md): `linear_tree=True` converts silently wrong, so it is refused here; features of large
magnitude (epoch seconds) lose precision in float32 and flip splits, which the parity check on real held-out rows
catches; only numeric features can be exported (integer-code categoricals the same way at serving time).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ev_assets.lib.ml import core

ATOL = 1e-4
RTOL = 1e-4
TARGET_OPSET = 15
INPUT_NAME = "input"


@dataclass(frozen=True)
class OnnxExport:
    path: Path
    bytes: int
    max_abs_diff: float
    tolerance: dict[str, float]  # {"atol": ..., "rtol": ...}, as numpy.allclose reads them
    parity_ok: bool
    n_rows: int
    n_mismatched: int = 0  # rows outside the tolerance
    opset: int = TARGET_OPSET
    output: str = ""  # which ONNX output was compared

    def as_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path)}


def convert(trained: core.TrainedModel):
    """The booster as an ONNX `ModelProto` (input "input": float32 [None, n_features])."""
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    _check_exportable(trained)
    return onnxmltools.convert_lightgbm(
        trained.booster, initial_types=[(INPUT_NAME, FloatTensorType([None, len(trained.features)]))],
        target_opset=TARGET_OPSET, zipmap=False)


def to_onnx(trained: core.TrainedModel, path: Path, atol: float = ATOL, rtol: float = RTOL) -> OnnxExport:
    """Convert `trained`, write it to `path` and check parity on `trained.test_X`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(convert(trained).SerializeToString())
    return check_parity(trained, path, atol=atol, rtol=rtol)


def check_parity(trained: core.TrainedModel, onnx_path: Path, atol: float = ATOL, rtol: float = RTOL) -> OnnxExport:
    """Compare ONNX Runtime on `onnx_path` with the booster on the held-out rows (see the module docstring)."""
    onnx_path = Path(onnx_path)
    X = trained.test_X[trained.features]
    expected = np.asarray(trained.booster.predict(X), dtype=np.float64).ravel()
    session = _session(onnx_path)
    actual, output = _onnx_predict(session, _as_float32(X), trained.task)
    n = len(expected)
    if actual.shape != expected.shape:
        return OnnxExport(path=onnx_path, bytes=onnx_path.stat().st_size, max_abs_diff=float("inf"),
                          tolerance={"atol": atol, "rtol": rtol}, parity_ok=False, n_rows=n, n_mismatched=n,
                          output=f"{output} (shape {actual.shape} vs {expected.shape})")
    diff = np.abs(actual - expected)
    close = np.isclose(actual, expected, atol=atol, rtol=rtol)  # NaN is never close
    max_abs_diff = 0.0 if n == 0 else float("nan") if np.isnan(diff).any() else float(diff.max())
    return OnnxExport(path=onnx_path, bytes=onnx_path.stat().st_size, max_abs_diff=max_abs_diff,
                      tolerance={"atol": atol, "rtol": rtol}, parity_ok=bool(n > 0 and close.all()), n_rows=n,
                      n_mismatched=int((~close).sum()), output=output)


def latency(trained: core.TrainedModel, onnx_path: Path, pyfunc_model=None, runs: int = 2000, warmup: int = 100,
            batch_rows: int = 1000, batch_runs: int = 20) -> dict:
    """Median single-row latency in µs of the LightGBM booster (numpy row and one-row DataFrame, one thread; and
    a one-row DataFrame with LightGBM's default threads, as MLflow's pyfunc wrapper calls it), an MLflow pyfunc
    model if given (one-row DataFrame; it cannot be told to use one thread) and ONNX Runtime (float32 row, one
    thread), plus the median time of a batch of `batch_rows` held-out rows for each, and the ONNX file size.
    Set OMP_NUM_THREADS=1 before LightGBM is imported to run the default-threads rows on one thread."""
    onnx_path = Path(onnx_path)
    X = trained.test_X[trained.features]
    if X.empty:
        raise core.InsufficientData("no held-out rows to time predictions on")
    row_frame = X.iloc[[0]]
    row_numpy = row_frame.to_numpy(dtype=np.float64)
    row_f32 = _as_float32(row_frame)
    batch = X.iloc[:batch_rows]
    batch_f32 = _as_float32(batch)
    booster = trained.booster
    session = _session(onnx_path)
    feed = lambda a: {INPUT_NAME: a}  # noqa: E731

    single = {
        "lightgbm_booster_numpy_us": lambda: booster.predict(row_numpy, num_threads=1),
        "lightgbm_booster_dataframe_us": lambda: booster.predict(row_frame, num_threads=1),
        # what an MLflow pyfunc model does: it calls predict(frame) and drops its params, so no num_threads
        "lightgbm_booster_dataframe_default_threads_us": lambda: booster.predict(row_frame),
        "onnxruntime_us": lambda: session.run(None, feed(row_f32)),
    }
    batched = {
        "lightgbm_booster_numpy_us": lambda: booster.predict(batch.to_numpy(dtype=np.float64), num_threads=1),
        "lightgbm_booster_dataframe_us": lambda: booster.predict(batch, num_threads=1),
        "lightgbm_booster_dataframe_default_threads_us": lambda: booster.predict(batch),
        "onnxruntime_us": lambda: session.run(None, feed(batch_f32)),
    }
    if pyfunc_model is not None:
        single["mlflow_pyfunc_us"] = lambda: pyfunc_model.predict(row_frame)
        batched["mlflow_pyfunc_us"] = lambda: pyfunc_model.predict(batch)
    result: dict = {
        "onnx_file_bytes": onnx_path.stat().st_size,
        "runs": runs,
        "threads": 1,
        "single_row_median_us": {k: _median_us(f, runs, warmup) for k, f in single.items()},
        "batch_rows": len(batch),
        "batch_median_us": {k: _median_us(f, batch_runs, 2) for k, f in batched.items()},
    }
    if pyfunc_model is None:
        result["single_row_median_us"]["mlflow_pyfunc_us"] = None
        result["batch_median_us"]["mlflow_pyfunc_us"] = None
    return result


# --- helpers -----------------------------------------------------------------------------------------------
def _check_exportable(trained: core.TrainedModel) -> None:
    if "is_linear=1" in trained.booster.model_to_string(num_iteration=-1):
        raise ValueError(f"{trained.name}: linear_tree models convert to ONNX silently wrong; not exported")
    numeric = trained.test_X[trained.features].dtypes.map(lambda d: pd.api.types.is_numeric_dtype(d)
                                                           and not isinstance(d, pd.CategoricalDtype))
    if not numeric.all():
        bad = ", ".join(numeric.index[~numeric.to_numpy()])
        raise ValueError(f"{trained.name}: ONNX export needs numeric features; not numeric: {bad} "
                         f"(integer-code categoricals the same way at training and serving time)")


def _as_float32(X: pd.DataFrame) -> np.ndarray:
    return np.ascontiguousarray(X.to_numpy(dtype=np.float32, na_value=np.nan))


def _session(onnx_path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # the label output's declared shape differs from the batch size: a warning
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def _onnx_predict(session, X32: np.ndarray, task: str) -> tuple[np.ndarray, str]:
    """(prediction per row as float64, which output it came from): P(class 1) or the regression value."""
    names = [o.name for o in session.get_outputs()]
    if task == "classification":
        name = "probabilities" if "probabilities" in names else names[-1]
        out = np.asarray(session.run([name], {INPUT_NAME: X32})[0], dtype=np.float64)
        if out.ndim == 2 and out.shape[1] == 2:
            return out[:, 1], f"{name}[:, 1]"
        if out.ndim == 1 or out.shape[1] == 1:
            return out.ravel(), name
        raise ValueError(f"ONNX output {name} has shape {out.shape}: only binary classification is compared")
    name = "variable" if "variable" in names else names[0]
    return np.asarray(session.run([name], {INPUT_NAME: X32})[0], dtype=np.float64).ravel(), name


def _median_us(call, runs: int, warmup: int) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000
