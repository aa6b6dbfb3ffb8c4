"""Feature drift of a model: a current window of features compared with the model's training reference, with
Evidently 0.7 (no Dagster here).

- **Methods pinned per column kind**, never Evidently's defaults (which switch from p-value tests to distances at
  1,000 reference rows, so the verdict would depend on the sample size): numerical columns by the Wasserstein
  distance normed by the reference's standard deviation (`wasserstein`, drifted at >= 0.1: the distribution moved
  a tenth of a standard deviation), categorical and binary columns by the Jensen-Shannon distance of their value
  shares (`jensenshannon`, drifted at >= 0.1): the thresholds of Evidently's distance tests. A window of a day from
  a few dozen stations is a small sample of strongly autocorrelated rows, so single columns of an unchanged process
  do cross 0.1 (on the simulated feed a held-out day flagged 5-30 % of the columns with 20-40 stations, a doubled
  demand 65-85 %): the verdict is the share of drifted columns against `drift_share_limit`, not one column. Kinds:
  as named (`categorical=`, `numerical=`), else categorical when not numeric or binary (0 and 1 only, NaN aside)
  in the reference. `methods=` overrides a kind, `column_methods=` one column.
- **Bounded** and **like with like**: the window and the reference are sampled, the reference with the window's mix
  of hours of the week (`sampling.py`).
- **Share drifted**: drifted columns / compared columns. A column whose values are all missing on one side only
  counts as drifted (score 1, method `missing`); one missing on both sides, or holding one and the same value on
  both sides (a POI category no station has), cannot drift: it is left out of the share and named in
  `skipped_columns`.

`compare(...)` returns a `Drift` (the summary and Evidently's snapshot); `save(drift, folder)` writes the
self-contained HTML report and the summary as JSON, each under a timestamped name and as `latest.html` /
`latest.json`. `report(...)` does both.

`import evidently` takes seconds: it happens inside `compare`.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from html import escape as html_escape
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ev_assets.lib.monitoring.sampling import match_hour_of_week, sample_rows
from ev_assets.lib.vocabulary import LOCAL_TZ

NUMERICAL, CATEGORICAL = "numerical", "categorical"


@dataclass(frozen=True)
class Method:
    """An Evidently drift method (stattest) and the score at or above which a column counts as drifted."""

    name: str
    threshold: float


DEFAULT_METHODS: dict[str, Method] = {
    NUMERICAL: Method("wasserstein", 0.1),
    CATEGORICAL: Method("jensenshannon", 0.1),
}


@dataclass
class DriftSummary:
    """The machine-readable result of one comparison (what the asset puts in its metadata)."""

    name: str
    share_drifted: float
    drifted_columns: list[str]
    columns: dict[str, dict]  # column -> {kind, method, threshold, score, drifted}
    reference_rows: int
    current_rows: int
    window_from: str | None
    window_to: str | None
    reference_from: str | None
    reference_to: str | None
    matching: dict
    seed: int
    max_rows: int
    created_at: str
    skipped_columns: dict[str, str] = field(default_factory=dict)  # column -> why it was not compared
    html_path: str | None = None
    json_path: str | None = None

    @property
    def n_columns(self) -> int:
        return len(self.columns)

    @property
    def n_drifted(self) -> int:
        return len(self.drifted_columns)

    def scores(self) -> dict[str, float]:
        return {c: v["score"] for c, v in self.columns.items()}

    def to_dict(self) -> dict:
        return {**asdict(self), "n_columns": self.n_columns, "n_drifted": self.n_drifted}

    def table(self) -> pd.DataFrame:
        """One row per compared column, drifted first, by score."""
        frame = pd.DataFrame.from_dict(self.columns, orient="index")
        frame.index.name = "column"
        if frame.empty:
            return frame
        return frame.sort_values(["drifted", "score"], ascending=[False, False])


@dataclass
class Drift:
    summary: DriftSummary
    snapshot: object  # evidently's run result (save_html)


# --- the pieces ----------------------------------------------------------------------------------------------------
def column_kinds(reference: pd.DataFrame, columns: Iterable[str], categorical: Iterable[str] = (),
                 numerical: Iterable[str] = ()) -> dict[str, str]:
    """Column -> "categorical" or "numerical": as named, else categorical when not numeric or binary (only 0 and 1,
    NaN aside) in the reference. Decided on the reference alone, so a window cannot change how a column is tested."""
    named_cat, named_num = set(categorical), set(numerical)
    kinds = {}
    for column in columns:
        values = reference[column]
        if column in named_cat:
            kinds[column] = CATEGORICAL
        elif column in named_num:
            kinds[column] = NUMERICAL
        elif not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            kinds[column] = CATEGORICAL
        else:
            seen = set(pd.unique(values.dropna()))
            kinds[column] = CATEGORICAL if seen and seen <= {0, 1} else NUMERICAL
    return kinds


def _span(frame: pd.DataFrame, time_column: str | None) -> tuple[str | None, str | None]:
    if not time_column or time_column not in frame or frame.empty:
        return None, None
    times = pd.to_datetime(frame[time_column], utc=True)
    return times.min().isoformat(), times.max().isoformat()


# --- the comparison ------------------------------------------------------------------------------------------------
def compare(reference: pd.DataFrame, current: pd.DataFrame, columns: Iterable[str], *, name: str,
            time_column: str | None = None, max_rows: int = 5000, seed: int = 0, match: bool = True,
            categorical: Iterable[str] = (), numerical: Iterable[str] = (),
            methods: Mapping[str, Method] | None = None,
            column_methods: Mapping[str, Method] | None = None, share_limit: float = 0.5,
            tz: str = LOCAL_TZ) -> Drift:
    """Compare `current` with `reference` on `columns` (see the module docstring).

    `time_column` (tz-aware or UTC timestamps) is needed for `match=True` and gives the windows' spans;
    `share_limit` only labels the report's own overview test (the pass / fail is the caller's, on
    `share_drifted`)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import DriftedColumnsCount, ValueDrift

    columns = list(dict.fromkeys(columns))
    missing = [c for c in columns if c not in reference.columns or c not in current.columns]
    if missing:
        raise KeyError(f"columns missing from the reference or the current window: {', '.join(missing)}")
    if current.empty or reference.empty:
        raise ValueError(f"{name}: nothing to compare ({len(reference)} reference rows, {len(current)} current rows)")
    if match and not time_column:
        raise ValueError("matching the hours of the week needs time_column")
    chosen = {**DEFAULT_METHODS, **(methods or {})}
    max_rows = int(max_rows)

    cur = sample_rows(current, max_rows, seed)
    if match:
        ref, matching = match_hour_of_week(reference, cur, time_column, max_rows, seed + 1, tz)
    else:
        ref, matching = sample_rows(reference, max_rows, seed + 1), {"method": "none (uniform sample)"}

    skipped: dict[str, str] = {}
    one_sided: dict[str, str] = {}
    compared = []
    for column in columns:
        ref_empty, cur_empty = ref[column].isna().all(), cur[column].isna().all()
        if ref_empty and cur_empty:
            skipped[column] = "no values in the reference nor in the window"
        elif ref_empty or cur_empty:
            one_sided[column] = "reference" if ref_empty else "window"
        elif _constant(ref[column]) and _constant(cur[column]) and _same(ref[column], cur[column]):
            value = ref[column].dropna().iloc[0]
            value = value.item() if hasattr(value, "item") else value
            skipped[column] = f"the same single value on both sides ({value!r}): cannot drift"
        else:
            compared.append(column)
    kinds = column_kinds(ref, compared, categorical, numerical)
    rules = {c: (column_methods or {}).get(c, chosen[kinds[c]]) for c in compared}

    results: dict[str, dict] = {}
    snapshot = None
    if compared:
        definition = DataDefinition(numerical_columns=[c for c in compared if kinds[c] == NUMERICAL],
                                    categorical_columns=[c for c in compared if kinds[c] == CATEGORICAL])
        metrics = [
            DriftedColumnsCount(columns=compared, drift_share=share_limit,
                                per_column_method={c: r.name for c, r in rules.items()},
                                per_column_threshold={c: r.threshold for c, r in rules.items()}),
            *(ValueDrift(column=c, method=r.name, threshold=r.threshold) for c, r in rules.items()),
        ]
        snapshot = Report(metrics, include_tests=True).run(
            current_data=Dataset.from_pandas(cur[compared].reset_index(drop=True), data_definition=definition),
            reference_data=Dataset.from_pandas(ref[compared].reset_index(drop=True), data_definition=definition),
        )
        scores = _value_drift_scores(snapshot)
        for column in compared:
            rule, score = rules[column], scores[column]
            results[column] = {"kind": kinds[column], "method": rule.name, "threshold": rule.threshold,
                               "score": score, "drifted": bool(math.isfinite(score) and score >= rule.threshold)}
    for column, side in one_sided.items():
        results[column] = {"kind": "missing", "method": "missing", "threshold": 1.0, "score": 1.0, "drifted": True,
                           "note": f"all values missing in the {side}"}
    results = {c: results[c] for c in columns if c in results}
    drifted = [c for c, r in results.items() if r["drifted"]]
    window_from, window_to = _span(current, time_column)
    reference_from, reference_to = _span(reference, time_column)
    summary = DriftSummary(
        name=name,
        share_drifted=len(drifted) / len(results) if results else 0.0,
        drifted_columns=drifted,
        columns=results,
        reference_rows=len(ref),
        current_rows=len(cur),
        window_from=window_from,
        window_to=window_to,
        reference_from=reference_from,
        reference_to=reference_to,
        matching={**matching, "reference_rows_available": len(reference), "current_rows_available": len(current)},
        seed=seed,
        max_rows=max_rows,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        skipped_columns=skipped,
    )
    return Drift(summary, snapshot)


def _constant(values: pd.Series) -> bool:
    return values.dropna().nunique() == 1 and not values.isna().any()


def _same(a: pd.Series, b: pd.Series) -> bool:
    return a.dropna().iloc[0] == b.dropna().iloc[0]


def _value_drift_scores(snapshot) -> dict[str, float]:
    """Column -> the score of its ValueDrift metric in an Evidently 0.7 snapshot."""
    scores = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config") or {}
        if config.get("type", "").endswith("ValueDrift") and "column" in config:
            value = metric.get("value")
            scores[config["column"]] = float(value) if value is not None else float("nan")
    return scores


# --- writing -------------------------------------------------------------------------------------------------------
def save(drift: Drift, folder: Path, keep_html: int | None = None) -> DriftSummary:
    """Write `<stamp>.html` (self-contained Evidently report) and `<stamp>.json` (the summary) to `folder`, and
    copy both to `latest.html` / `latest.json` (replaced atomically). Returns the summary with its paths.

    With `keep_html`, only that many of the newest stamped HTML reports stay (each is a few MB; a daily report per
    model would grow without end). Every JSON summary stays: they are the drift history, a few kB each."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    summary = drift.summary
    html = folder / f"{stamp}.html"
    if drift.snapshot is not None:
        drift.snapshot.save_html(str(html))
        html.write_text(_with_header(html.read_text(encoding="utf-8"), summary), encoding="utf-8")
    else:
        html.write_text(f"<!doctype html><html><body><h1>{summary.name}</h1><p>No column could be compared: "
                        f"{json.dumps(summary.skipped_columns)}</p></body></html>")
    summary.html_path = str(html)
    summary.json_path = str(folder / f"{stamp}.json")
    Path(summary.json_path).write_text(json.dumps(summary.to_dict(), indent=1, default=_json_default))
    for source, latest in ((html, "latest.html"), (Path(summary.json_path), "latest.json")):
        partial = folder / f".{latest}.partial"
        shutil.copyfile(source, partial)
        os.replace(partial, folder / latest)
    if keep_html is not None:
        stamped = sorted(p for p in folder.glob("*.html") if p.name != "latest.html")  # stamps sort by time
        for old in stamped[:-keep_html]:
            old.unlink(missing_ok=True)
    return summary


def _with_header(page: str, summary: DriftSummary) -> str:
    """Evidently's page names neither the model nor the windows: a title and a header line that do."""
    def when(value: str | None) -> str:
        return "?" if value is None else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M UTC")

    title = f"Drift report: {summary.name}"
    text = (f"current window {when(summary.window_from)} .. {when(summary.window_to)} ({summary.current_rows:,} rows) "
            f"against the training reference {when(summary.reference_from)} .. {when(summary.reference_to)} "
            f"({summary.reference_rows:,} rows, sampled by {summary.matching.get('method')}); "
            f"{summary.n_drifted} of {summary.n_columns} columns drifted (share {summary.share_drifted:.2f}); "
            f"written {when(summary.created_at)}")
    header = ('<div style="font-family:sans-serif;padding:12px 16px;border-bottom:1px solid #ccc">'
              f'<h2 style="margin:0 0 4px 0">{html_escape(title)}</h2><div>{html_escape(text)}</div></div>')
    page = re.sub(r"<title>.*?</title>", f"<title>{html_escape(title)}</title>", page, count=1, flags=re.S)
    if "<title>" not in page:
        page = page.replace("<head>", f"<head><title>{html_escape(title)}</title>", 1)
    return re.sub(r"<body([^>]*)>", lambda m: m.group(0) + header, page, count=1)


def report(reference: pd.DataFrame, current: pd.DataFrame, columns: Iterable[str], *, name: str, folder: Path,
           keep_html: int | None = None, **options) -> DriftSummary:
    """`compare(...)` then `save(...)` to `folder`: the summary, with the paths of the HTML report and the JSON."""
    return save(compare(reference, current, columns, name=name, **options), folder, keep_html)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    return str(value)
