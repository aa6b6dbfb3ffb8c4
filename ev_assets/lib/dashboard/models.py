"""The models page: a run's metrics against its baselines, the champions and gate decisions of the registry, and
the latest drift and live-error reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import pandas as pd


# --- models ------------------------------------------------------------------------------------------------------
def split_metrics(metrics: dict[str, float]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """A run's metrics as (the model's held-out `test_<metric>`, {baseline: {metric: value}}) from
    `baseline_<name>_test_<metric>` (the names `Registry.register` logs)."""
    model = {k[len("test_"):]: v for k, v in metrics.items() if k.startswith("test_")}
    baselines: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if key.startswith("baseline_") and "_test_" in key:
            baseline, _, metric = key[len("baseline_"):].rpartition("_test_")
            baselines.setdefault(baseline, {})[metric] = value
    return model, baselines


def metrics_table(metrics: dict[str, float]) -> pd.DataFrame:
    """Predictors (model, then each baseline) x metrics, from a run's metrics."""
    model, baselines = split_metrics(metrics)
    rows = {"model": model, **{name.replace("_", " "): values for name, values in sorted(baselines.items())}}
    return pd.DataFrame.from_dict(rows, orient="index")


def registry_overview(db, names: Iterable[str], ui_url: str | None = None) -> list[dict[str, Any]]:
    """Per model: its champion (version, metrics, primary metric, run link) and its newest version with that
    version's champion-gate decision (`champion_gate.*` tags: promoted or not, and why). `db` is an
    `ev_assets.lib.ml.registry_db.RegistryDB` (read straight from the registry's file, without MLflow)."""
    from ev_assets.lib.ml import registry_db

    ui_url = ui_url or registry_db.DEFAULT_UI_URL
    out = []
    with db.connect() as con:
        for name in names:
            entry: dict[str, Any] = {"name": name, "champion": None, "newest": None}
            versions = sorted(db.versions(name, con), key=lambda v: int(v.version))
            if not versions:
                out.append(entry)
                continue
            champion = db.champion(name, con)
            if champion is not None:
                run = db.run(champion.run_id, con)
                entry["champion"] = {
                    "version": champion.version, "run_id": champion.run_id, "metrics": run.metrics,
                    "primary_metric": run.tags.get("primary_metric"), "verdict": run.tags.get("verdict"),
                    "trained_at": pd.Timestamp(run.start_ms, unit="ms", tz="UTC") if run.start_ms else None,
                    "run_url": registry_db.run_url(ui_url, run.experiment_id, champion.run_id),
                    "version_url": registry_db.version_url(ui_url, name, champion.version),
                }
            newest = versions[-1]
            gate = {k.split(".", 1)[1]: v for k, v in newest.tags.items() if k.startswith("champion_gate.")}
            entry["newest"] = {"version": newest.version, "gate": gate, "n_versions": len(versions),
                               "created_at": pd.Timestamp(newest.created_ms, unit="ms", tz="UTC")
                               if newest.created_ms else None}
            out.append(entry)
    return out


def drift_status(drift_dir: Path, model: str, share_limit: float) -> dict[str, Any] | None:
    """The latest drift report of a model (`<drift_dir>/<model>/latest.json` and `latest.html`, written
    by `ev_assets.lib.monitoring.drift.save`), with `drifted` = share_drifted > share_limit as the check judges;
    None when there is none."""
    folder = Path(drift_dir) / model
    summary_path, html = folder / "latest.json", folder / "latest.html"
    if not summary_path.exists() and not html.exists():
        return None
    summary: dict[str, Any] = {}
    if summary_path.exists():
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            summary = {"error": f"unreadable {summary_path.name}: {exc}"}
    share = summary.get("share_drifted")
    return {
        **summary,
        "share_drifted": share,
        "share_limit": share_limit,
        "drifted": None if share is None else bool(share > share_limit),
        "html": str(html) if html.exists() else None,
        "summary_path": str(summary_path) if summary_path.exists() else None,
    }


def live_error(live_error_dir: Path) -> dict[str, Any] | None:
    """`<live_error_dir>/latest.json` (the live Brier score per model), None when there is none."""
    path = Path(live_error_dir) / "latest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
