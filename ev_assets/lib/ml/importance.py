"""What a model leans on: LightGBM's gain importance (the total loss reduction of the splits on each feature), as a
share of the total, in the model card and as a bar chart (`feature_importance.png`) in the MLflow run.

Gain says what the trees used, not what causes the target: two correlated features share (or steal) the gain."""

from __future__ import annotations

import io

import pandas as pd

from ev_assets.lib.ml.core import TrainedModel

TOP = 15
CHART = "feature_importance.png"


def gain_importance(model: TrainedModel) -> pd.DataFrame:
    """feature, gain, share (of the total gain), split count; highest gain first."""
    booster = model.booster
    gain = booster.feature_importance(importance_type="gain")
    splits = booster.feature_importance(importance_type="split")
    frame = pd.DataFrame({"feature": booster.feature_name(), "gain": gain.astype(float), "splits": splits})
    total = frame["gain"].sum()
    frame["share"] = frame["gain"] / total if total > 0 else 0.0
    return frame.sort_values(["gain", "feature"], ascending=[False, True], kind="stable").reset_index(drop=True)


def chart(table: pd.DataFrame, title: str, top: int = TOP) -> bytes:
    """A horizontal bar chart (PNG) of the `top` features' gain shares."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    shown = table.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(shown) + 1.2), dpi=100)
    try:
        ax.barh(shown["feature"], 100 * shown["share"], color="#3b7dd8")
        ax.set_xlabel("share of total gain (%)")
        ax.set_title(title, fontsize=10)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def attach(model: TrainedModel, top: int = TOP) -> pd.DataFrame:
    """The gain table into the model's card (top features) and the chart into its MLflow artifacts."""
    table = gain_importance(model)
    used = table[table["gain"] > 0]
    shown = used.head(top).assign(share=lambda t: (100 * t["share"]).round(1))
    model.sections["Feature importance (LightGBM gain)"] = "\n".join([
        f"Share of the total gain of the splits, top {len(shown)} of {len(table)} features "
        f"({len(table) - len(used)} never used); chart: `{CHART}` in the MLflow run.", "",
        shown.rename(columns={"share": "gain share %"})[["feature", "gain share %", "splits"]]
        .to_markdown(index=False),
    ])
    model.artifacts[CHART] = chart(table, f"{model.name}: gain importance", top)
    return table
