"""What every model of the platform hands on: the trained booster, its features, the held-out rows, and its
evaluation against baselines on those same rows. The registry and the champion gate need nothing else.

A model module (`lib/ml/<model>.py`) builds its features, splits by time, trains LightGBM and returns a
`TrainedModel`; it raises `InsufficientData` with a reason a user can act on when it cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn import metrics as skm


# Every model starts from these: reproducible LightGBM on the 2-core machines (same seed, same result).
LGB_BASE = {"num_threads": 2, "seed": 42, "deterministic": True, "force_row_wise": True, "verbosity": -1}


class InsufficientData(ValueError):
    """Too little (or unusable) data to train or judge a model; the message says what is missing."""


# --- metrics -----------------------------------------------------------------------------------------------
def smape(y_true, y_pred) -> float:
    """Symmetric mean absolute percentage error in % (0 where both are 0)."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    denominator = np.abs(y_true) + np.abs(y_pred)
    ratio = np.divide(2 * np.abs(y_pred - y_true), denominator, out=np.zeros_like(denominator), where=denominator > 0)
    return float(100 * ratio.mean())


def expected_calibration_error(y_true, p, bins: int = 10) -> float:
    """Mean |observed rate - predicted probability| over equal-width probability bins, weighted by rows."""
    y_true, p = np.asarray(y_true, float), np.clip(np.asarray(p, float), 0, 1)
    which = np.minimum((p * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            error += mask.mean() * abs(y_true[mask].mean() - p[mask].mean())
    return float(error)


def _safe(metric: Callable, y_true, y_pred) -> float:
    try:
        return float(metric(y_true, y_pred))
    except ValueError:  # e.g. AUC with one class in the test set
        return float("nan")


# name -> (function of (y_true, prediction), lower is better)
METRICS: dict[str, tuple[Callable, bool]] = {
    "mae": (skm.mean_absolute_error, True),
    "r2": (skm.r2_score, False),
    "smape": (smape, True),
    "brier": (skm.brier_score_loss, True),
    "log_loss": (lambda y, p: skm.log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1]), True),
    "auc": (skm.roc_auc_score, False),
    "pr_auc": (skm.average_precision_score, False),
    "macro_f1": (lambda y, p: skm.f1_score(y, np.asarray(p) >= 0.5, average="macro"), False),
    "ece": (expected_calibration_error, True),
}
REGRESSION_METRICS = ("mae", "smape", "r2")
CLASSIFICATION_METRICS = ("brier", "log_loss", "auc", "pr_auc", "macro_f1", "ece")


def score(metric: str, y_true, y_pred) -> float:
    return _safe(METRICS[metric][0], y_true, y_pred)


def lower_is_better(metric: str) -> bool:
    return METRICS[metric][1]


def better(metric: str, a: float, b: float) -> bool:
    """Whether score `a` is strictly better than `b` on `metric` (NaN is never better)."""
    if np.isnan(a):
        return False
    if np.isnan(b):
        return True
    return a < b if lower_is_better(metric) else a > b


# --- evaluation --------------------------------------------------------------------------------------------
@dataclass
class Evaluation:
    """The model and its baselines scored on the same held-out rows."""

    primary: str  # the metric that decides (beats baselines, beats the champion)
    model: dict[str, float]
    baselines: dict[str, dict[str, float]]  # baseline name -> metrics

    @classmethod
    def of(cls, primary: str, names: tuple[str, ...], y_true, prediction, baseline_predictions: dict) -> "Evaluation":
        return cls(
            primary=primary,
            model={m: score(m, y_true, prediction) for m in names},
            baselines={b: {m: score(m, y_true, p) for m in names} for b, p in baseline_predictions.items()},
        )

    @property
    def beats_baselines(self) -> bool:
        return all(better(self.primary, self.model[self.primary], b[self.primary]) for b in self.baselines.values())

    def table(self) -> pd.DataFrame:
        """One row per predictor (the model first), one column per metric."""
        rows = {"model": self.model, **{f"baseline: {name}": m for name, m in self.baselines.items()}}
        return pd.DataFrame.from_dict(rows, orient="index").round(4)

    def strongest_baseline(self) -> str | None:
        """The baseline with the best primary score on the held-out rows (the one the gate judges against)."""
        best = min if lower_is_better(self.primary) else max
        finite = {b: m for b, m in self.baselines.items() if not np.isnan(m[self.primary])}
        return best(finite, key=lambda b: finite[b][self.primary]) if finite else None

    def verdict(self) -> str:
        """One sentence for metadata and docs: does the model beat its baselines on the primary metric?"""
        baseline = self.strongest_baseline()
        if baseline is None:
            return f"{self.primary} {self.model[self.primary]:.4g} (no baseline)"
        words = "beats" if self.beats_baselines else "does NOT beat"
        return (f"{words} its baselines on {self.primary}: {self.model[self.primary]:.4g} vs "
                f"{self.baselines[baseline][self.primary]:.4g} ({baseline})")


@dataclass
class TrainedModel:
    """A trained model and everything needed to register, gate, export and describe it."""

    name: str  # the registered model name, e.g. "session_energy_kwh"
    task: str  # "classification" (predicts a probability) or "regression"
    booster: lgb.Booster
    features: list[str]
    params: dict
    evaluation: Evaluation
    test_X: pd.DataFrame  # the held-out rows, exactly the features in order
    test_y: pd.Series
    splits: dict[str, str] = field(default_factory=dict)  # e.g. {"train_end": iso, "valid_end": iso, ...}
    train_rows: int = 0
    description: str = ""  # what it predicts, for whom (the model card's first lines)
    limits: str = ""  # what it cannot do (the model card's last lines)
    # title -> Markdown: what later steps measure (backtests, intervals, importance), shown before the limits
    sections: dict[str, str] = field(default_factory=dict)
    extra_metrics: dict[str, float] = field(default_factory=dict)  # logged to MLflow beside the test metrics
    artifacts: dict[str, bytes] = field(default_factory=dict)  # file name -> content, logged to the MLflow run
    interval: object | None = None  # regression: its P10-P90 forecast (`intervals.Interval`), when it has one
    # --- what the gate needs besides the rows (see lib/ml/gate.py) ---
    # each baseline's prediction for every held-out row (the names of `evaluation.baselines`)
    test_baselines: dict[str, np.ndarray] = field(default_factory=dict)
    # per held-out row: the dataset or site group it belongs to (no group may get worse), and the cluster the
    # bootstrap resamples as a whole (rows of one station-day or one user are not independent); None: none
    test_groups: pd.Series | None = None
    test_clusters: pd.Series | None = None
    # integer codes learned on this training's rows ({code column: {value: code}}), bundled with the logged model
    # (`encodings.json`), and the value behind each coded column of every held-out row: another version is scored
    # on these rows with ITS codes, as it serves (`rows_for`)
    encodings: dict[str, dict[str, int]] = field(default_factory=dict)
    test_codes: pd.DataFrame | None = None

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(X[self.features])

    def rows_for(self, encodings: dict[str, dict[str, int]]) -> pd.DataFrame:
        """The held-out rows with each coded column re-coded by `encodings` (-1: a value they do not know), as a
        version trained with those codes would see them when serving."""
        rows = self.test_X.copy()
        for column, codes in encodings.items():
            if column in rows.columns and self.test_codes is not None and column in self.test_codes.columns:
                rows[column] = self.test_codes[column].map(codes).fillna(-1).astype(int).to_numpy()
        return rows

    def model_card(self) -> str:
        """A short Markdown model card: data, features, splits, metrics vs baselines, limits."""
        splits = "\n".join(f"- {k}: {v}" for k, v in self.splits.items()) or "- (none recorded)"
        return "\n".join([
            f"# {self.name}", "", self.description, "",
            f"**Task**: {self.task}; LightGBM, trained on {self.train_rows:,} rows, judged on {len(self.test_y):,} "
            f"held-out rows.", "",
            "## Features", "", ", ".join(f"`{f}`" for f in self.features), "",
            "## Time-based splits", "", splits, "",
            "## Held-out metrics vs baselines", "", self.evaluation.table().to_markdown(), "",
            f"Verdict: {self.evaluation.verdict()}.", "",
            *(line for title, text in self.sections.items() for line in (f"## {title}", "", text, "")),
            "## Limits", "", self.limits or "-",
        ])


def float32_exact(frame: pd.DataFrame, columns: list[str], bits: int = 10) -> pd.DataFrame:
    """`frame` with `columns` rounded to multiples of 2**-bits: then every value, and every midpoint of two values
    where LightGBM puts a split, is exact in float32 (for |x| < 2**(23 - bits)), so a float32 ONNX model takes the
    same branch as the booster. Serving must round the same way."""
    out = frame.copy()
    scale = 2.0**bits
    for column in columns:
        out[column] = np.round(out[column].astype(float) * scale) / scale
    return out


def time_split(frame: pd.DataFrame, time_column: str, valid_share: float = 0.15, test_share: float = 0.2):
    """(train, valid, test, boundaries): consecutive blocks in time, never shuffled (no look into the future)."""
    if frame.empty:
        raise InsufficientData("no rows to split")
    ordered = frame.sort_values(time_column, kind="stable")
    times = ordered[time_column]
    valid_start = times.quantile(1 - valid_share - test_share, interpolation="nearest")
    test_start = times.quantile(1 - test_share, interpolation="nearest")
    train = ordered[times < valid_start]
    valid = ordered[(times >= valid_start) & (times < test_start)]
    test = ordered[times >= test_start]
    if min(len(train), len(valid), len(test)) == 0:
        raise InsufficientData(f"{len(frame)} rows over {times.min()} .. {times.max()} do not make three time blocks")
    bounds = {"train_start": str(times.min()), "valid_start": str(valid_start), "test_start": str(test_start),
              "test_end": str(times.max())}
    return train, valid, test, bounds
