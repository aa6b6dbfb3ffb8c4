"""P10 / P50 / P90: interval forecasts for the regression models, by conformalized quantile regression (CQR).

The point model (L1 objective) is the P50. Two LightGBM models with the quantile objective (alpha 0.1 and 0.9) on
the same training rows give a first P10 and P90; quantile boosting alone usually covers too little on new data, so
the interval is widened (or narrowed) by a conformal correction fitted on the validation block: the `level`
(80 %) quantile of max(P10 - y, y - P90) there, with the finite-sample factor (n + 1) / n. Per group when groups
are given (the session models: one correction per dataset, a Norwegian garage and a Californian workplace differ),
else one. The interval is then [P10 - c, P90 + c], and its coverage is measured on the held-out rows, which the
fit never saw: the 80 % interval should hold 75-85 % of them.

`attach` puts the coverage and mean width in the model card and the MLflow metrics, and the two quantile boosters
and the corrections in the run's artifacts (`interval_p10.txt`, `interval_p90.txt`, `interval.json`), so the
interval can be served beside the champion.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

from ev_assets.lib.ml.core import TrainedModel

LEVEL = 0.8
QUANTILES = (0.1, 0.9)
MAX_ROUNDS, EARLY_STOPPING = 1000, 50
ALL = "all"


@dataclass
class Interval:
    lower: lgb.Booster
    upper: lgb.Booster
    corrections: dict[str, float]  # group -> conformal correction (added to both sides); "all": the pooled one
    level: float = LEVEL
    group_feature: str | None = None  # the feature whose value picks the correction
    coverage: dict[str, float] = field(default_factory=dict)  # measured on the held-out rows: "all" and per group
    width: float = float("nan")

    def predict(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(P10, P90) of each row; P10 never above P90."""
        features = self.lower.feature_name()
        low, high = self.lower.predict(X[features]), self.upper.predict(X[features])
        low, high = np.minimum(low, high), np.maximum(low, high)
        c = self._correction(X)
        return low - c, high + c

    def _correction(self, X: pd.DataFrame) -> np.ndarray:
        pooled = self.corrections[ALL]
        if self.group_feature is None:
            return np.full(len(X), pooled)
        keys = X[self.group_feature].astype(int).astype(str)
        return keys.map(self.corrections).fillna(pooled).to_numpy(float)

    def predict_row(self, features: list[str] | tuple[str, ...], x: np.ndarray) -> tuple[float, float]:
        """(P10, P90) of one feature row `x` in the order `features` (the champion's)."""
        frame = pd.DataFrame(np.asarray(x, float).reshape(1, -1), columns=list(features))
        low, high = self.predict(frame)
        return float(low[0]), float(high[0])

    @classmethod
    def from_files(cls, folder) -> "Interval":
        """The interval `attach` logged: `interval_p10.txt`, `interval_p90.txt`, `interval.json` in `folder`."""
        from pathlib import Path

        folder = Path(folder)
        meta = json.loads((folder / "interval.json").read_text())
        return cls(lgb.Booster(model_file=str(folder / "interval_p10.txt")),
                   lgb.Booster(model_file=str(folder / "interval_p90.txt")),
                   {str(k): float(v) for k, v in meta["corrections"].items()}, float(meta["level"]),
                   meta.get("group_feature"), dict(meta.get("coverage") or {}), float(meta.get("width", "nan")))

    def to_json(self) -> str:
        return json.dumps({"level": self.level, "quantiles": list(QUANTILES), "corrections": self.corrections,
                           "group_feature": self.group_feature, "coverage": self.coverage, "width": self.width},
                          indent=1)


def _quantile_booster(params: dict, alpha: float, train_X, train_y, valid_X, valid_y) -> lgb.Booster:
    quantile = {**params, "objective": "quantile", "alpha": alpha, "metric": "quantile"}
    train_set = lgb.Dataset(train_X, train_y, free_raw_data=False)
    valid_set = lgb.Dataset(valid_X, valid_y, reference=train_set)
    booster = lgb.train(quantile, train_set, num_boost_round=MAX_ROUNDS, valid_sets=[valid_set],
                        callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)])
    best = booster.best_iteration or booster.current_iteration()
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))


def _conformal(scores: np.ndarray, level: float) -> float:
    n = len(scores)
    rank = min(1.0, np.ceil((n + 1) * level) / n)
    return float(np.quantile(scores, rank, method="higher"))


def fit(params: dict, train_X: pd.DataFrame, train_y, valid_X: pd.DataFrame, valid_y, level: float = LEVEL,
        group_feature: str | None = None) -> Interval:
    """Quantile boosters on the training rows, the conformal correction on the validation rows."""
    lower = _quantile_booster(params, QUANTILES[0], train_X, train_y, valid_X, valid_y)
    upper = _quantile_booster(params, QUANTILES[1], train_X, train_y, valid_X, valid_y)
    interval = Interval(lower, upper, {ALL: 0.0}, level, group_feature)
    low, high = interval.predict(valid_X)
    y = np.asarray(valid_y, float)
    scores = np.maximum(low - y, y - high)
    corrections = {ALL: _conformal(scores, level)}
    if group_feature is not None:
        groups = valid_X[group_feature].astype(int).astype(str).to_numpy()
        for group in np.unique(groups):
            if (groups == group).sum() >= 20:  # fewer: the pooled correction
                corrections[group] = _conformal(scores[groups == group], level)
    interval.corrections = corrections
    return interval


def measure(interval: Interval, X: pd.DataFrame, y) -> None:
    """Coverage (share of rows inside [P10, P90]) and mean width on held-out rows, overall and per group."""
    low, high = interval.predict(X)
    y = np.asarray(y, float)
    inside = (y >= low) & (y <= high)
    interval.coverage = {ALL: float(inside.mean())}
    interval.width = float(np.mean(high - low))
    if interval.group_feature is not None:
        groups = X[interval.group_feature].astype(int).astype(str).to_numpy()
        interval.coverage.update({g: float(inside[groups == g].mean()) for g in np.unique(groups)})


def attach(model: TrainedModel, interval: Interval, group_names: dict[str, str] | None = None) -> Interval:
    """Measure `interval` on the model's held-out rows and record it: card section, MLflow metrics, artifacts."""
    measure(interval, model.test_X, model.test_y)
    model.interval = interval
    pct = round(100 * interval.level)
    names = group_names or {}
    per_group = [f"- {names.get(g, g)}: {100 * c:.1f}% (correction {interval.corrections.get(g, interval.corrections[ALL]):+.3g})"
                 for g, c in interval.coverage.items() if g != ALL]
    covered = interval.coverage[ALL]
    verdict = "within" if abs(covered - interval.level) <= 0.05 else "OUTSIDE"
    model.sections[f"Interval forecast (P10-P90, {pct}%)"] = "\n".join([
        f"P10 and P90 by quantile LightGBM with a conformal correction on the validation block (CQR); the P50 is "
        f"the model itself. On the {len(model.test_y):,} held-out rows the {pct}% interval covers "
        f"{100 * covered:.1f}% ({verdict} the {pct - 5}-{pct + 5}% target), mean width {interval.width:.3g}.",
        *([""] + per_group if per_group else []),
    ])
    model.extra_metrics.update({f"interval_coverage_{pct}": covered, f"interval_width_{pct}": interval.width,
                                **{f"interval_coverage_{pct}_{names.get(g, g)}": c
                                   for g, c in interval.coverage.items() if g != ALL}})
    model.artifacts.update({"interval_p10.txt": interval.lower.model_to_string().encode(),
                            "interval_p90.txt": interval.upper.model_to_string().encode(),
                            "interval.json": interval.to_json().encode()})
    return interval
