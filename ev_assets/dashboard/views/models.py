"""Models: each champion with its held-out metrics against its baselines, the latest drift report of the monitored
models, and the latest retraining decision (the champion gate's tags on the newest version)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import streamlit as st

from ev_assets.dashboard import common, filters, ml
from ev_assets.lib.dashboard.models import drift_status, live_error, metrics_table, split_metrics

MONITORED = tuple(ml.AVAILABILITY_MODELS.values())  # the models with drift reports and live error


def _score(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


def overview_table(overview: list[dict], drift: dict[str, dict | None]) -> pd.DataFrame:
    rows = []
    for entry in overview:
        champion, newest = entry["champion"], entry["newest"]
        row = {"model": entry["name"], "champion": f"v{champion['version']}" if champion else "none",
               "metric": "–", "model score": "–", "best baseline": "–", "beats baselines": None}  # no champion: dashes
        if champion:
            model, baselines = split_metrics(champion["metrics"])
            metric = champion["primary_metric"]
            lower = metric not in ("auc", "pr_auc", "macro_f1", "r2")
            best = [v.get(metric) for v in baselines.values() if v.get(metric) is not None]
            best_baseline = (min(best) if lower else max(best)) if best else None
            row.update({"metric": f"{metric} {'↓' if lower else '↑'}", "model score": _score(model.get(metric)),
                        "best baseline": _score(best_baseline),
                        "beats baselines": None if best_baseline is None or model.get(metric) is None else
                        (model[metric] < best_baseline if lower else model[metric] > best_baseline)})
        if newest:
            gate = newest["gate"]
            row["newest version"] = f"v{newest['version']}: {gate.get('decision', 'no decision recorded')}"
        report = drift.get(entry["name"])
        row["drift"] = ("not monitored" if entry["name"] not in MONITORED else "no report yet" if report is None
                        else "DRIFTED" if report.get("drifted") else
                        "no drift" if report.get("drifted") is False else "unknown")
        rows.append(row)
    return pd.DataFrame(rows)


def drift_panel(name: str, report: dict | None) -> None:
    if report is None:
        st.info(f"No drift report yet for {name}: run `make demo` (its monitoring step writes "
                f"`monitoring/drift/{name}/latest.html`).")
        return
    share = report.get("share_drifted")
    text = (f"{report.get('n_drifted', len(report.get('drifted_columns') or []))} of {report.get('n_columns', '?')} "
            f"features drifted ({100 * share:.0f} % > limit {100 * report['share_limit']:.0f} %)"
            if share is not None else "no summary")
    window = (f" · window {report.get('window_from')} – {report.get('window_to')}"
              if report.get("window_from") else "")
    made = f" · report of {report['created_at']}" if report.get("created_at") else ""
    if report.get("drifted"):
        st.error(f"**Drift**: {text}{window}{made}. Drifted: {', '.join(report.get('drifted_columns') or [])}")
    else:
        st.success(f"**No drift**: {text.replace('>', '<=')}{window}{made}")
    html = report.get("html")
    if html:
        path = Path(html)
        st.download_button("Open the drift report (HTML)", data=lambda p=path: p.read_bytes(),  # read on click
                           file_name=f"drift_{name}.html", mime="text/html", key=f"drift_{name}", on_click="ignore")
        st.caption(f"Evidently report: `{path}`")


def gate_panel(newest: dict | None) -> None:
    if not newest:
        return
    gate = newest["gate"]
    decision = gate.get("decision")
    when = gate.get("decided_at") or (f"{newest['created_at']:%Y-%m-%d %H:%M} UTC" if newest.get("created_at") else "")
    line = (f"**Latest retraining decision** (version {newest['version']} of {newest['n_versions']}, {when}): "
            f"**{decision or 'no decision recorded'}** — {gate.get('reason', '')}")
    (st.success if decision == "promoted" else st.warning)(line)


def render() -> None:
    st.title("Models")
    f = filters.current()
    s = f.settings
    holder = ml.models(s)
    if not holder.has_registry():
        st.info(f"**No model registry yet** (`{holder.root / 'mlflow.db'}`): run `make demo`, whose ML job trains "
                "the models, judges them against their baselines and registers the champions.")
        return
    with st.spinner("Reading the model registry…"):
        try:
            overview = holder.overview()
        except Exception as exc:  # noqa: BLE001 - an unreadable registry is shown, not raised
            st.warning(f"The model registry could not be read ({type(exc).__name__}: {exc}).")
            return
    if not any(e["newest"] for e in overview):
        st.info("**No model registered yet**: run `make demo` (or the ML job, `ml_job`).")
        return
    drift = {name: drift_status(s.drift_dir, name, s.drift_share_limit) for name in MONITORED}
    st.caption("Champion = the version holding the registry alias `champion`; metrics on its held-out rows (the "
               "latest time block). The gate promotes a new version only if it beats its baselines and the "
               "champion on the same rows. `make mlflow` shows the full registry.")
    st.dataframe(overview_table(overview, drift), hide_index=True)

    live = live_error(s.live_error_dir)
    for entry in overview:
        name, champion = entry["name"], entry["champion"]
        st.subheader(name)
        if champion is None:
            st.info("No champion: " + ("no version registered yet (run `make demo`)." if entry["newest"] is None else
                                       "no version has passed the gate yet."))
        else:
            trained = f", trained {champion['trained_at']:%Y-%m-%d %H:%M} UTC" if champion.get("trained_at") else ""
            st.markdown(f"Champion **version {champion['version']}**{trained}; primary metric "
                        f"**{champion['primary_metric']}**. {champion.get('verdict') or ''}  \n"
                        f"MLflow: [run]({champion['run_url']}) · [version]({champion['version_url']}) (`make mlflow`)")
            table = metrics_table(champion["metrics"])
            if not table.empty:
                st.dataframe(table, width="content")
        if name in MONITORED:
            drift_panel(name, drift.get(name))
            latest = (live or {}).get("latest", {}).get(name)
            if latest:
                persistence = latest.get("persistence_brier")
                versus = (f"persistence {persistence:.4f} on the same predictions; limit "
                          f"{s.live_error_ratio_limit:g} x that + {s.live_error_slack:g}"
                          if isinstance(persistence, (int, float)) and persistence == persistence else
                          f"persistence unknown; limit {s.live_brier_limit:g}")
                st.caption(f"Live error: Brier {latest['brier']:.4f} over {latest['matched']} matched predictions "
                           f"(window from {latest.get('window_start')}; {versus}).")
        gate_panel(entry["newest"])


if __name__ == "__main__":
    common.run(render)
