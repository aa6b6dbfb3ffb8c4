"""The champion gate, as plain functions: is a candidate better than its strongest baseline and than the current
champion, by more than noise, on the same held-out rows, and does no dataset or site group get worse?

Every comparison is paired: the candidate and its rival predict the SAME held-out rows, and the gate looks at the
difference of their losses row by row (`row_losses`: absolute error for MAE, squared error for Brier, ...). The
paired bootstrap (`compare`) resamples the rows - by cluster when the rows are not independent (the polls of one
station-day, the sessions of one user) - and gives the mean difference with its interval at `confidence`
(percentile bootstrap, `resamples` draws, a fixed seed: the same rows give the same interval).

A candidate is **better** than a rival when the upper end of the interval of (candidate - rival) lies below
`-margin` (margin = `margin_share` x the rival's loss; 0 by default: the interval must exclude zero). It is
**worse** when the lower end lies above zero (worse beyond noise). The gate (`judge`) passes when the candidate is
better than its strongest baseline (the best primary score on the held-out rows) and than the champion (or there
is none); `no_regression` holds when no group of rows (dataset, city) is worse under the candidate than under the
champion.

The champion is scored as it serves: the caller (`Registry.champion_prediction`) loads its booster and its own
category codes and predicts the candidate's held-out rows re-coded with them (`TrainedModel.rows_for`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ev_assets.lib.ml import core
from ev_assets.lib.ml.compare import bootstrap_interval, row_losses

PREFIX = "champion_gate."  # MLflow tags of the decision (on the version and its run)


@dataclass(frozen=True)
class Comparison:
    """Candidate vs one rival on the same rows: mean loss of each, the mean difference and its interval."""

    rival: str
    metric: str
    candidate: float
    rival_score: float
    difference: float  # candidate - rival (negative: the candidate has the lower loss)
    low: float
    high: float
    confidence: float
    rows: int
    clusters: int
    margin: float  # absolute, in units of the metric

    @property
    def better(self) -> bool:
        return bool(self.rows and self.high < -self.margin)

    @property
    def worse(self) -> bool:
        return bool(self.rows and self.low > 0)

    def words(self) -> str:
        verdict = ("better than" if self.better else "worse than" if self.worse else "not distinguishable from")
        margin = f", margin {self.margin:.4g}" if self.margin else ""
        return (f"{verdict} {self.rival}: {self.metric} {self.candidate:.4g} vs {self.rival_score:.4g}, difference "
                f"{self.difference:+.4g} ({self.confidence:.0%} CI {self.low:+.4g} .. {self.high:+.4g}{margin}; "
                f"{self.rows:,} rows in {self.clusters:,} clusters)")

    @classmethod
    def from_dict(cls, d: dict) -> "Comparison":
        """The comparison again from `as_dict` (e.g. an evaluation's metadata)."""
        return cls(d["rival"], d["metric"], d["candidate"], d["rival_score"], d["difference"], d["ci_low"], d["ci_high"],
                   d["confidence"], d["rows"], d["clusters"], d["margin"])

    def as_dict(self) -> dict:
        return {"rival": self.rival, "metric": self.metric, "candidate": self.candidate, "rival_score": self.rival_score,
                "difference": self.difference, "ci_low": self.low, "ci_high": self.high, "confidence": self.confidence,
                "rows": self.rows, "clusters": self.clusters, "margin": self.margin, "better": self.better,
                "worse": self.worse}


def compare(metric: str, y_true, candidate, rival, *, rival_name: str, clusters=None, confidence: float = 0.95,
            resamples: int = 1000, margin_share: float = 0.0, seed: int = 0) -> Comparison:
    """The paired bootstrap of the mean loss difference (candidate - rival) on the same rows, resampling whole
    clusters (None: each row is its own). NaN predictions of the rival (a baseline without an answer) fail."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie between 0 and 1, not {confidence}")
    a, b = row_losses(metric, y_true, candidate), row_losses(metric, y_true, rival)
    d = a - b
    n = len(d)
    score_a, score_b = (float(a.mean()), float(b.mean())) if n else (float("nan"), float("nan"))
    margin = abs(margin_share * score_b) if n else 0.0
    if n == 0:
        return Comparison(rival_name, metric, score_a, score_b, float("nan"), float("nan"), float("nan"), confidence,
                          0, 0, margin)
    low, high, k = bootstrap_interval(d, clusters, resamples, confidence, seed)
    return Comparison(rival_name, metric, score_a, score_b, float(d.mean()), float(low), float(high), confidence,
                      n, k, margin)


@dataclass
class GateResult:
    """What the gate found for one candidate (see the module docstring)."""

    metric: str
    baseline: Comparison | None  # vs the strongest baseline (None: the model has no baseline)
    champion: Comparison | None  # vs the champion (None: no champion, or it could not be scored)
    champion_version: str | None
    champion_note: str  # how the champion was scored, or why it was not
    groups: dict[str, Comparison] = field(default_factory=dict)  # candidate vs champion, per dataset / site group
    comparable: bool = True  # False: a champion exists but could not be scored on these rows

    @property
    def beats_baselines(self) -> bool:
        return self.baseline is None or self.baseline.better

    @property
    def beats_champion(self) -> bool:
        return self.comparable and (self.champion is None or self.champion.better)

    @property
    def passed(self) -> bool:
        return self.beats_baselines and self.beats_champion

    @property
    def regressions(self) -> list[str]:
        return [group for group, comparison in self.groups.items() if comparison.worse]

    def reason(self) -> str:
        parts = [f"vs the strongest baseline: {self.baseline.words()}" if self.baseline else "no baseline"]
        if self.champion is not None:
            parts.append(f"vs champion version {self.champion_version} ({self.champion_note}): {self.champion.words()}")
        else:
            parts.append(self.champion_note)
        verdict = ("passes the gate" if self.passed else
                   "does NOT pass the gate: it does NOT beat its strongest baseline beyond noise"
                   if not self.beats_baselines else
                   "does NOT pass the gate: it does NOT beat the champion beyond noise" if self.comparable else
                   "does NOT pass the gate: the champion cannot be scored on these rows")
        return f"{verdict}; " + "; ".join(parts)

    def regression_reason(self) -> str:
        if self.champion is None:
            return "no champion to compare with: nothing can get worse"
        if not self.groups:
            return "the held-out rows have no groups"
        worse = self.regressions
        if worse:
            return "worse than the champion beyond noise on " + "; ".join(
                f"{g}: {self.groups[g].words()}" for g in worse)
        return f"no group worse than the champion beyond noise ({', '.join(self.groups)})"

    def tags(self) -> dict[str, str]:
        """The gate's figures as MLflow tags (text), on the candidate's version and run."""
        fmt = lambda v: "" if v is None else (repr(float(v)) if isinstance(v, (float, np.floating)) else str(v))  # noqa: E731
        tags = {f"{PREFIX}metric": self.metric, f"{PREFIX}gate": "passed" if self.passed else "failed",
                f"{PREFIX}beats_baselines": str(self.beats_baselines).lower(),
                f"{PREFIX}champion_version": fmt(self.champion_version),
                f"{PREFIX}champion_scored": self.champion_note[:500],
                f"{PREFIX}no_regression": "failed" if self.regressions else "passed",
                f"{PREFIX}reason": self.reason()[:5000]}
        for label, comparison in (("baseline", self.baseline), ("champion", self.champion)):
            if comparison is None:
                continue
            tags[f"{PREFIX}{label}"] = comparison.rival
            for key in ("candidate", "rival_score", "difference", "ci_low", "ci_high", "confidence", "margin"):
                tags[f"{PREFIX}{label}_{key}"] = fmt(comparison.as_dict()[key])
        tags[f"{PREFIX}challenger_score"] = fmt(self.baseline.candidate if self.baseline else
                                                self.champion.candidate if self.champion else None)
        tags[f"{PREFIX}champion_score"] = fmt(self.champion.rival_score if self.champion else None)
        for group, comparison in self.groups.items():
            key = _key(group)
            tags[f"{PREFIX}group.{key}"] = (f"{comparison.difference:+.4g} [{comparison.low:+.4g}, "
                                            f"{comparison.high:+.4g}]{' WORSE' if comparison.worse else ''}")
        return tags


def _key(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in str(text))[:100]


def judge(trained: core.TrainedModel, champion_prediction: np.ndarray | None, champion_version: str | None,
          champion_note: str, *, confidence: float = 0.95, resamples: int = 1000, margin_share: float = 0.0,
          comparable: bool = True) -> GateResult:
    """The gate for `trained` (its held-out rows, its baselines' predictions) against its strongest baseline and
    the champion's predictions of the same rows (None: no champion, or not comparable)."""
    metric = trained.evaluation.primary
    y = np.asarray(trained.test_y, float)
    prediction = trained.predict(trained.test_X)
    clusters = None if trained.test_clusters is None else np.asarray(trained.test_clusters)
    options = dict(confidence=confidence, resamples=resamples, margin_share=margin_share)
    strongest = trained.evaluation.strongest_baseline()
    baseline = None
    if strongest is not None and strongest in trained.test_baselines:
        baseline = compare(metric, y, prediction, trained.test_baselines[strongest], rival_name=f"baseline: {strongest}",
                           clusters=clusters, **options)
    champion = groups = None
    if champion_prediction is not None:
        champion = compare(metric, y, prediction, champion_prediction, rival_name=f"champion v{champion_version}",
                           clusters=clusters, **options)
        groups = {}
        if trained.test_groups is not None:
            labels = pd.Series(np.asarray(trained.test_groups)).astype(str)
            for label in sorted(labels.unique()):
                rows = (labels == label).to_numpy()
                groups[label] = compare(metric, y[rows], prediction[rows], np.asarray(champion_prediction)[rows],
                                        rival_name=f"champion v{champion_version} on {label}",
                                        clusters=None if clusters is None else clusters[rows],
                                        **{**options, "margin_share": 0.0})
    return GateResult(metric, baseline, champion, champion_version, champion_note, groups or {}, comparable)
