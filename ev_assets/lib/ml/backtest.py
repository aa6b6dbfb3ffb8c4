"""Rolling-origin backtests: every model family trained again as if its data had ended earlier.

A family trains on its frames and judges on the latest time block (20 % of the rows, `core.time_split`): that
block stays the gate's held-out rows. A backtest cuts every frame at earlier origins, the row quantiles
`ORIGIN_SHARES` of its own time column (keeping the rows before it), and trains the family on each cut as it would have trained then. With the
family's test share of 0.2, cutting at 0.78, 0.61, 0.48 and 0.375 of the rows gives four test blocks that neither
overlap each other nor the gate's (each is about [0.8 c, c) of the rows; the shares leave a small gap between
blocks, so the quantile rounding of the family's own split never makes them touch).

Per model: the primary metric on each fold, its mean with a 95 % t-interval over the folds, and the same for the
difference to the strongest baseline of each fold (model - baseline; lower-is-better metrics: negative = the model
is better). A fold whose cut cannot train (too little data, or any error of the family on the shorter data) is
listed as skipped with the reason; it never fails the model's own training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats

from ev_assets.lib.ml.core import InsufficientData, TrainedModel, lower_is_better

ORIGIN_SHARES = (0.78, 0.61, 0.48, 0.375)
# the time column of each frame a family trains on (else the family's own `time_column`)
TIME_COLUMNS = {"session_reports": "plugin_at", "acn_sessions": "connection_time", "traces": "reading_at"}
LEVEL = 0.95


@dataclass
class Fold:
    origin: str  # the cut: the data before this time
    share: float
    test_start: str
    test_rows: int
    score: float
    baseline: str
    baseline_score: float


@dataclass
class Backtest:
    metric: str
    folds: list[Fold] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def _interval(self, values: list[float]) -> tuple[float, float, float]:
        values = np.asarray([v for v in values if np.isfinite(v)], float)
        if len(values) == 0:
            return float("nan"), float("nan"), float("nan")
        mean = float(values.mean())
        if len(values) < 2:
            return mean, float("nan"), float("nan")
        half = stats.t.ppf(0.5 + LEVEL / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
        return mean, mean - half, mean + half

    @property
    def score(self) -> tuple[float, float, float]:
        return self._interval([f.score for f in self.folds])

    @property
    def vs_baseline(self) -> tuple[float, float, float]:
        return self._interval([f.score - f.baseline_score for f in self.folds])

    def metrics(self) -> dict[str, float]:
        (mean, low, high), (dmean, dlow, dhigh) = self.score, self.vs_baseline
        out = {f"backtest_{self.metric}_mean": mean, f"backtest_{self.metric}_ci_low": low,
               f"backtest_{self.metric}_ci_high": high, f"backtest_vs_baseline_{self.metric}_mean": dmean,
               f"backtest_vs_baseline_{self.metric}_ci_low": dlow, f"backtest_vs_baseline_{self.metric}_ci_high": dhigh,
               "backtest_folds": float(len(self.folds))}
        return {k: v for k, v in out.items() if np.isfinite(v)}

    def summary(self) -> str:
        (mean, low, high), (dmean, dlow, dhigh) = self.score, self.vs_baseline
        if not self.folds:
            return f"no backtest fold could train ({'; '.join(self.skipped) or 'none run'})"
        better = "lower" if lower_is_better(self.metric) else "higher"
        return (f"{self.metric} {mean:.4g} (95% CI {low:.4g} .. {high:.4g}) over {len(self.folds)} origins; model - "
                f"strongest baseline {dmean:+.4g} ({dlow:+.4g} .. {dhigh:+.4g}; {better} is better)")

    def markdown(self) -> str:
        rows = [f"| {f.origin[:19]} | {f.test_start[:19]} | {f.test_rows:,} | {f.score:.4g} | {f.baseline} | "
                f"{f.baseline_score:.4g} |" for f in self.folds]
        table = ["| origin (data before) | test from | test rows | model | strongest baseline | baseline |",
                 "|---|---|---|---|---|---|", *rows]
        skipped = [f"- skipped: {reason}" for reason in self.skipped]
        return "\n".join([f"Rolling origin, {self.metric}: {self.summary()}.", "", *table, "", *skipped]).strip()


def _cut(frames: dict[str, pd.DataFrame], columns: dict[str, str], share: float) -> tuple[dict, str]:
    out, origins = {}, []
    for name, frame in frames.items():
        column = columns.get(name)
        if column is None or frame is None or frame.empty or column not in frame.columns:
            out[name] = frame
            continue
        times = pd.to_datetime(frame[column], utc=True, errors="coerce")
        origin = times.quantile(share, interpolation="nearest")
        out[name] = frame[times < origin]  # strictly before: the next origin's test block starts at it
        origins.append(str(origin))
    return out, max(origins, default="")


def _strongest(model: TrainedModel) -> tuple[str, float]:
    metric = model.evaluation.primary
    scores = {b: s[metric] for b, s in model.evaluation.baselines.items() if np.isfinite(s.get(metric, np.nan))}
    if not scores:
        return "-", float("nan")
    pick = min if lower_is_better(metric) else max
    name = pick(scores, key=scores.get)
    return name, float(scores[name])


def run(train: Callable[[dict], list[TrainedModel]], frames: dict[str, pd.DataFrame], time_column: str | None,
        names: tuple[str, ...], shares: tuple[float, ...] = ORIGIN_SHARES) -> dict[str, Backtest]:
    """Backtests of the models `names` that `train(frames)` returns, at the origins `shares`."""
    columns = {name: TIME_COLUMNS.get(name, time_column) for name in frames}
    results: dict[str, Backtest] = {}
    for share in shares:
        cut, origin = _cut(frames, columns, share)
        try:
            models = {m.name: m for m in train(cut)}
        except Exception as exc:  # noqa: BLE001 - a fold that cannot train is reported, never fails the model
            kind = "" if isinstance(exc, InsufficientData) else f"{type(exc).__name__}: "
            for name in names:
                results.setdefault(name, Backtest("?")).skipped.append(f"origin {share:.0%} of the rows: {kind}{exc}")
            continue
        for name in names:
            if name not in models:
                results.setdefault(name, Backtest("?")).skipped.append(f"origin {share:.0%}: no {name} trained")
                continue
            model = models[name]
            backtest = results.setdefault(name, Backtest(model.evaluation.primary))
            backtest.metric = model.evaluation.primary
            baseline, baseline_score = _strongest(model)
            test_start = min((v for k, v in model.splits.items() if k.endswith("test_start")), default="")
            backtest.folds.append(Fold(origin, share, test_start, len(model.test_y),
                                       float(model.evaluation.model[model.evaluation.primary]), baseline,
                                       baseline_score))
    return results


def attach(models: list[TrainedModel], backtests: dict[str, Backtest]) -> None:
    """The backtest of each model into its model card (a section) and its MLflow metrics."""
    for model in models:
        backtest = backtests.get(model.name)
        if backtest is None:
            continue
        if backtest.metric == "?":
            backtest.metric = model.evaluation.primary
        model.sections["Rolling-origin backtest"] = backtest.markdown()
        model.extra_metrics.update(backtest.metrics())
