"""Live error of the availability forecasts: each logged prediction joined to its outcome once a later poll has
shown it, and the Brier score per model and window (no Dagster here).

A prediction (a record of the prediction log, `ev_assets.lib.predlog`) says "station `station_id` has at least one
AVAILABLE charging point at `target_at` with probability `output.probability_available`". Its outcome is the
station's `any_available` (0/1) at the poll whose interval holds `target_at` (`polled_at <= target_at < polled_at +
poll interval`): the same rule that made the training targets (`ev_assets.lib.ml.stations`, the poll slot t + h
rounded down to the grid), so the live score reads like the held-out score. A prediction whose poll is not there
yet is *unmatched* (outcome not known yet); it is counted, never scored.

Outcomes come from the station-time feature set (`station_id`, `polled_at`, `any_available`), which is built
from `marts.fct_charging_point_status`.

Windows: by the time the forecast is for (`target_at`), `window` long (24 h: UTC days), per model.

Beside each model's Brier score, persistence's on the same matched predictions: the station's `any_available` at
the poll the forecast was made from (`features_at`, else the request time) taken as the forecast. The live-error
limit is relative to it (`over_limit`): a model is only "too wrong" when it is clearly worse than saying "as now".
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

PROBABILITY_KEY = "probability_available"
TABLE_COLUMNS = ["model", "window_start", "window_end", "predictions", "matched", "unmatched", "brier",
                 "persistence_brier", "mean_probability", "observed_rate", "versions"]


def availability_predictions(log: pd.DataFrame) -> pd.DataFrame:
    """The availability forecasts of a prediction log frame (`predlog.read`): model, version, at, station_id,
    target_at, probability. Records without a station, a target time or a probability in [0, 1] are left out."""
    columns = ["request_id", "model", "version", "at", "station_id", "target_at", "probability", "made_at"]
    if log is None or log.empty:
        return pd.DataFrame(columns=columns)
    frame = log.copy()
    frame["probability"] = frame["output"].map(_probability)
    frame["target_at"] = pd.to_datetime(frame["target_at"], utc=True, errors="coerce")
    frame["at"] = pd.to_datetime(frame["at"], utc=True, errors="coerce")
    made = frame["features_at"] if "features_at" in frame.columns else pd.Series(pd.NaT, index=frame.index)
    frame["made_at"] = pd.to_datetime(made, utc=True, errors="coerce").fillna(frame["at"])
    keep = frame["station_id"].notna() & frame["target_at"].notna() & frame["probability"].notna()
    frame = frame.loc[keep, columns].reset_index(drop=True)
    frame["station_id"] = frame["station_id"].astype(str)
    frame["version"] = frame["version"].astype(str)
    return frame


def _probability(output) -> float:
    value = output.get(PROBABILITY_KEY) if isinstance(output, dict) else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return np.nan
    return number if math.isfinite(number) and 0.0 <= number <= 1.0 else np.nan


def outcomes_from_features(features: pd.DataFrame) -> pd.DataFrame:
    """(station_id, polled_at, any_available) of the station-time feature set, one row per station and poll."""
    frame = features[["station_id", "polled_at", "any_available"]].dropna().copy()
    frame["station_id"] = frame["station_id"].astype(str)
    frame["polled_at"] = pd.to_datetime(frame["polled_at"], utc=True)
    frame["any_available"] = frame["any_available"].astype(float)
    return frame.drop_duplicates(["station_id", "polled_at"], keep="last").reset_index(drop=True)


def join_outcomes(predictions: pd.DataFrame, outcomes: pd.DataFrame, poll_interval_minutes: int) -> pd.DataFrame:
    """`predictions` with `outcome` (0/1, NaN while unknown) and `outcome_polled_at`: the station's poll whose
    interval holds `target_at`; and `persistence` (0/1, NaN when unknown): its state at the poll whose interval
    holds `made_at`, the moment the forecast was made from."""
    out = _join_at(predictions, outcomes, poll_interval_minutes, "target_at")
    if "made_at" in predictions.columns:
        made = _join_at(predictions.drop(columns=["target_at"]).rename(columns={"made_at": "target_at"}),
                        outcomes, poll_interval_minutes, "target_at")
        out["persistence"] = made["outcome"].to_numpy()
    else:
        out["persistence"] = np.nan
    return out


def _join_at(predictions: pd.DataFrame, outcomes: pd.DataFrame, poll_interval_minutes: int, at: str) -> pd.DataFrame:
    out = predictions.copy()
    out["outcome"] = np.nan
    out["outcome_polled_at"] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
    if out.empty or outcomes.empty:
        return out
    interval = pd.Timedelta(minutes=int(poll_interval_minutes))
    left = out.reset_index().rename(columns={"index": "_row"})
    left["target_at"] = left[at].astype("datetime64[ns, UTC]")
    right = outcomes.rename(columns={"polled_at": "outcome_polled_at", "any_available": "_outcome"}).copy()
    right["outcome_polled_at"] = right["outcome_polled_at"].astype("datetime64[ns, UTC]")
    right["_poll"] = right["outcome_polled_at"]
    joined = pd.merge_asof(left.sort_values("target_at").drop(columns=["outcome", "outcome_polled_at"]),
                           right.sort_values("_poll"), left_on="target_at", right_on="_poll", by="station_id",
                           direction="backward")
    inside = joined["_poll"].notna() & (joined["target_at"] - joined["_poll"] < interval)
    joined = joined[inside].set_index("_row")
    out.loc[joined.index, "outcome"] = joined["_outcome"].astype(float)
    out.loc[joined.index, "outcome_polled_at"] = joined["outcome_polled_at"]
    return out


def brier(probability, outcome) -> float:
    p, y = np.asarray(probability, dtype=float), np.asarray(outcome, dtype=float)
    return float(np.mean((p - y) ** 2)) if len(p) else float("nan")


def live_error(predictions: pd.DataFrame, outcomes: pd.DataFrame, poll_interval_minutes: int,
               window: str | pd.Timedelta = "24h") -> pd.DataFrame:
    """One row per model and window of `target_at`: predictions, matched (outcome known), unmatched, the Brier
    score of the matched ones (NaN when none), their mean probability and observed rate, the versions seen."""
    joined = join_outcomes(predictions, outcomes, poll_interval_minutes)
    if joined.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    length = pd.Timedelta(window)
    joined["window_start"] = joined["target_at"].dt.floor(length)
    rows = []
    for (model, start), group in joined.groupby(["model", "window_start"], sort=True):
        known = group[group["outcome"].notna()]
        rows.append({
            "model": model,
            "window_start": start,
            "window_end": start + length,
            "predictions": len(group),
            "matched": len(known),
            "unmatched": len(group) - len(known),
            "brier": brier(known["probability"], known["outcome"]) if len(known) else float("nan"),
            # on the same predictions only: NaN when the state at the forecast's poll is unknown for one of them
            "persistence_brier": (brier(known["persistence"], known["outcome"])
                                  if len(known) and known["persistence"].notna().all() else float("nan")),
            "mean_probability": float(known["probability"].mean()) if len(known) else float("nan"),
            "observed_rate": float(known["outcome"].mean()) if len(known) else float("nan"),
            "versions": ",".join(sorted(set(group["version"].astype(str)), key=_version_order)),
        })
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def latest_scored(table: pd.DataFrame) -> dict[str, dict]:
    """Model -> its latest window with at least one matched prediction (the figure the check compares)."""
    scored = table[table["matched"] > 0] if len(table) else table
    latest = {}
    for model, group in scored.groupby("model"):
        row = group.sort_values("window_start").iloc[-1]
        latest[model] = {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in row.items()}
    return latest


def over_limit(row: dict, ratio_limit: float, slack: float, absolute_limit: float) -> tuple[bool, float, str]:
    """(over the limit, the limit, how it was set) for a latest-window row: `ratio_limit` x persistence's Brier on
    the same predictions plus `slack` (a few polls of an unchanged station make persistence's Brier 0: a small
    absolute tolerance keeps that from alarming); `absolute_limit` when persistence's is unknown."""
    persistence = row.get("persistence_brier")
    if persistence is None or not math.isfinite(float(persistence)):
        return row["brier"] > absolute_limit, absolute_limit, "absolute (persistence unknown)"
    limit = ratio_limit * float(persistence) + slack
    return row["brier"] > limit, limit, f"{ratio_limit:g} x persistence {float(persistence):.4f} + {slack:g}"


def _version_order(version: str):
    return (0, int(version)) if version.isdigit() else (1, version)
