"""Is one predictor really better than another on the same rows? The paired bootstrap of the mean loss difference.

`paired_bootstrap(loss_a, loss_b)` resamples the rows (or whole groups of rows, e.g. days, when the rows within a
group are correlated, as the polls of one day are) with replacement and gives the mean difference
`mean(loss_a - loss_b)` with its percentile confidence interval. Negative = `a` has the lower loss. A difference
whose interval excludes zero is a real one at that level; one whose interval holds zero is not shown by these rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

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
    if groups is None:
        sums, counts = diff, np.ones(len(diff))
    else:
        labels = np.asarray(groups)[keep]
        _, which = np.unique(labels, return_inverse=True)
        sums = np.bincount(which, weights=diff)
        counts = np.bincount(which).astype(float)
    rng = np.random.default_rng(seed)
    n = len(sums)
    means = np.empty(n_boot)
    chunk = max(1, min(200, 2_000_000 // n))  # weights of at most ~2M cells at a time
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=size)
        means[start:start + size] = (weights @ sums) / np.maximum(weights @ counts, 1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Difference(float(diff.mean()), float(low), float(high), level, int(len(diff)), int(n))


def absolute_errors(y_true, prediction) -> np.ndarray:
    return np.abs(np.asarray(y_true, float) - np.asarray(prediction, float))


def squared_errors(y_true, probability) -> np.ndarray:
    """Per-row Brier loss."""
    return (np.asarray(y_true, float) - np.asarray(probability, float)) ** 2
