"""Is one predictor really better than another on the same rows? The paired bootstrap of the mean loss difference.

`paired_bootstrap(loss_a, loss_b)` resamples the rows (or whole groups of rows, e.g. days, when the rows within a
group are correlated, as the polls of one day are) with replacement and gives the mean difference
`mean(loss_a - loss_b)` with its percentile confidence interval. Negative = `a` has the lower loss. A difference
whose interval excludes zero is a real one at that level; one whose interval holds zero is not shown by these rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

N_BOOT = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Difference:
    """mean(loss_a - loss_b) on the same rows with its bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    level: float
    rows: int
    groups: int  # resampled units (rows, or the groups given)

    @property
    def a_better(self) -> bool:
        """`a` has the lower loss and the interval excludes zero."""
        return self.high < 0

    @property
    def b_better(self) -> bool:
        return self.low > 0

    def words(self, a: str = "model", b: str = "baseline", unit: str = "") -> str:
        unit = f" {unit}" if unit else ""
        verdict = (f"{a} better" if self.a_better else f"{b} better" if self.b_better
                   else "no difference shown (the interval holds 0)")
        return (f"{a} - {b}: {self.mean:+.4g}{unit} ({self.level:.0%} CI {self.low:+.4g} .. {self.high:+.4g}, "
                f"{self.rows:,} rows): {verdict}")

    def as_dict(self) -> dict:
        return {**asdict(self), "a_better": self.a_better, "b_better": self.b_better}


def paired_bootstrap(loss_a, loss_b, groups=None, n_boot: int = N_BOOT, level: float = LEVEL,
                     seed: int = 0) -> Difference:
    """Mean of `loss_a - loss_b` (per-row losses of two predictors on the same rows) with a percentile bootstrap
    interval. With `groups` (one label per row), whole groups are resampled (a cluster bootstrap) and each
    resample's mean is over the rows it holds."""
    a, b = np.asarray(loss_a, float), np.asarray(loss_b, float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"the two losses must be paired rows of the same length, got {a.shape} and {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    diff = (a - b)[keep]
    if len(diff) == 0:
        raise ValueError("no row with both losses finite: nothing to compare")
    low, high, n = bootstrap_interval(diff, None if groups is None else np.asarray(groups)[keep], n_boot, level, seed)
    return Difference(float(diff.mean()), low, high, level, int(len(diff)), n)


_MAX_DRAWS = 2_000_000  # cluster draws per chunk of resamples (memory stays bounded)


def bootstrap_interval(diff, groups=None, resamples: int = N_BOOT, level: float = LEVEL,
                       seed: int = 0) -> tuple[float, float, int]:
    """(low, high, clusters): the percentile interval at `level` of the mean of `diff` (a non-empty array of per-row
    loss differences), resampling whole groups of rows with replacement (None: each row is its own group) and
    taking each resample's mean over the rows it holds. The one bootstrap of the gate and of the evaluations."""
    diff = np.asarray(diff, float)
    labels = np.arange(len(diff)) if groups is None else pd.factorize(pd.Series(np.asarray(groups)).astype(str))[0]
    k = int(labels.max()) + 1
    sums, counts = np.bincount(labels, weights=diff, minlength=k), np.bincount(labels, minlength=k).astype(float)
    rng = np.random.default_rng(seed)
    means = []
    chunk = max(1, _MAX_DRAWS // k)
    for start in range(0, resamples, chunk):
        draws = rng.integers(0, k, size=(min(chunk, resamples - start), k))
        means.append(sums[draws].sum(axis=1) / counts[draws].sum(axis=1))
    tail = (1 - level) / 2
    low, high = np.quantile(np.concatenate(means), [tail, 1 - tail])
    return float(low), float(high), k


# the metrics the gate and the evaluations judge on: a mean of per-row losses (lower is better)
_ROW_LOSS = {
    "mae": lambda y, p: np.abs(p - y),
    "brier": lambda y, p: (p - y) ** 2,
    "log_loss": lambda y, p: -(y * np.log(np.clip(p, 1e-6, 1 - 1e-6)) + (1 - y) * np.log(np.clip(1 - p, 1e-6, 1 - 1e-6))),
    "smape": lambda y, p: 100 * np.divide(2 * np.abs(p - y), np.abs(y) + np.abs(p),
                                          out=np.zeros_like(y), where=(np.abs(y) + np.abs(p)) > 0),
}


def row_losses(metric: str, y_true, prediction) -> np.ndarray:
    """Each row's loss, whose mean is the metric (`core.score`)."""
    if metric not in _ROW_LOSS:
        raise ValueError(f"the gate judges on a mean of per-row losses ({', '.join(_ROW_LOSS)}), not {metric!r}")
    return _ROW_LOSS[metric](np.asarray(y_true, float), np.asarray(prediction, float))


def absolute_errors(y_true, prediction) -> np.ndarray:
    return row_losses("mae", y_true, prediction)


def squared_errors(y_true, probability) -> np.ndarray:
    """Per-row Brier loss."""
    return row_losses("brier", y_true, probability)
