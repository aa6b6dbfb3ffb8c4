"""ONNX export benchmark: one small LightGBM classifier, served three ways, one row at a time.

    .venv/bin/python benchmarks/onnx_latency.py
    .venv/bin/python benchmarks/onnx_latency.py --trees 500 --leaves 63 --results-json /tmp/onnx.json

Trains a binary classifier ("is the station occupied next hour?") on synthetic station-hours shaped like the
platform's station features, builds a `core.TrainedModel` with its baselines, then:

1. exports it with `ev_assets.lib.ml.export.to_onnx` and checks parity with the booster on the held-out rows
   (atol = rtol = 1e-4);
2. registers it in a throw-away MLflow registry (`ev_assets.lib.ml.registry`, sqlite in a temporary folder),
   passes the champion gate and loads `models:/<name>@champion` as an MLflow pyfunc model;
3. times single-row predictions (median over --runs calls, one thread where the runtime allows it) of the
   LightGBM Booster (numpy row and one-row DataFrame; the DataFrame also with LightGBM's default threads), the
   MLflow pyfunc model (one-row DataFrame; it always runs LightGBM's default threads, see OMP_NUM_THREADS) and
   ONNX Runtime (float32 row), and a batch of 1,000 held-out rows for each.

Nothing is written to the repository; the temporary folder is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ev_assets.lib.ml import core  # noqa: E402
from ev_assets.lib.ml.export import latency, to_onnx  # noqa: E402

FEATURES = ["hour", "weekday", "is_holiday", "n_points", "n_dc_points", "max_power_kw", "pois_500m",
            "supermarkets_500m", "occupied_share_lag_1h", "occupied_share_lag_24h", "occupied_share_7d_mean",
            "outages_30d"]


def station_hours(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    hour = rng.integers(0, 24, n)
    n_points = rng.integers(1, 9, n)
    X = pd.DataFrame({
        "hour": hour,
        "weekday": rng.integers(0, 7, n),
        "is_holiday": (rng.random(n) < 0.03).astype(int),
        "n_points": n_points,
        "n_dc_points": np.minimum(rng.poisson(0.5, n), n_points),
        "max_power_kw": rng.choice([11.0, 22.0, 50.0, 150.0, 300.0], n, p=[0.3, 0.4, 0.15, 0.1, 0.05]),
        "pois_500m": rng.poisson(4, n).astype(float),
        "supermarkets_500m": rng.poisson(0.8, n).astype(float),
        "occupied_share_lag_1h": rng.random(n),
        "occupied_share_lag_24h": rng.random(n),
        "occupied_share_7d_mean": rng.beta(2, 5, n),
        "outages_30d": rng.poisson(0.3, n),
    })
    X.loc[rng.random(n) < 0.05, "occupied_share_lag_1h"] = np.nan  # a poll gap
    daytime = np.sin((hour - 6) / 24 * 2 * np.pi)
    logit = (1.2 * daytime + 0.15 * X["pois_500m"] + 0.4 * X["supermarkets_500m"] - 0.4 * (X["weekday"] >= 5)
             + 2.0 * X["occupied_share_lag_1h"].fillna(X["occupied_share_7d_mean"]) + 3 * X["occupied_share_7d_mean"]
             - 0.3 * X["outages_30d"] - 2.5)
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int), name="occupied_next_hour")
    return X, y


def train(rows: int, trees: int, leaves: int, seed: int) -> core.TrainedModel:
    X, y = station_hours(rows, seed)
    train_end, valid_end = int(rows * 0.65), int(rows * 0.8)
    params = {"objective": "binary", "learning_rate": 0.05, "num_leaves": leaves, "min_data_in_leaf": 20,
              "feature_fraction": 0.9, "verbose": -1, "num_threads": 1, "seed": seed}
    booster = lgb.train(params, lgb.Dataset(X.iloc[:train_end], y.iloc[:train_end]), num_boost_round=trees,
                        valid_sets=[lgb.Dataset(X.iloc[train_end:valid_end], y.iloc[train_end:valid_end])],
                        callbacks=[lgb.early_stopping(50, verbose=False)])
    test_X, test_y = X.iloc[valid_end:], y.iloc[valid_end:]
    evaluation = core.Evaluation.of(
        "log_loss", core.CLASSIFICATION_METRICS, test_y, booster.predict(test_X),
        {"base rate": np.full(len(test_y), y.iloc[:train_end].mean()),
         "last hour's occupancy": test_X["occupied_share_lag_1h"].fillna(test_X["occupied_share_7d_mean"])})
    return core.TrainedModel(
        name="benchmark_station_occupancy", task="classification", booster=booster, features=FEATURES,
        params={**params, "num_boost_round": trees}, evaluation=evaluation, test_X=test_X, test_y=test_y,
        train_rows=train_end, description="Synthetic: is a station occupied in the next hour?")


def versions() -> str:
    import mlflow
    import onnxmltools
    import onnxruntime

    return (f"lightgbm {lgb.__version__}, onnxmltools {onnxmltools.__version__}, onnxruntime "
            f"{onnxruntime.__version__}, mlflow {mlflow.__version__}, numpy {np.__version__}, pandas {pd.__version__}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=20_000,
                   help="synthetic station-hours (65%% train, 15%% valid, 20%% test)")
    p.add_argument("--trees", type=int, default=300, help="boosting rounds at most (early stopping after 50)")
    p.add_argument("--leaves", type=int, default=31)
    p.add_argument("--runs", type=int, default=2000, help="timed calls per runtime (median reported)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--results-json", type=Path, default=None)
    args = p.parse_args(argv)
    started = time.perf_counter()

    print(f"machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python "
          f"{platform.python_version()}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}; load average "
          f"{os.getloadavg()[0]:.2f} (other processes share the cores)")
    t = time.perf_counter()
    trained = train(args.rows, args.trees, args.leaves, args.seed)
    print(f"model: binary classifier, {trained.booster.num_trees()} trees x {args.leaves} leaves, "
          f"{len(FEATURES)} features, {trained.train_rows:,} training rows, {len(trained.test_y):,} held-out rows "
          f"({time.perf_counter() - t:.1f} s); {trained.evaluation.verdict()}")

    with tempfile.TemporaryDirectory(prefix="onnx-benchmark-") as tmp:
        t = time.perf_counter()
        export = to_onnx(trained, Path(tmp) / "model.onnx")
        native_bytes = len(trained.booster.model_to_string().encode())
        print(f"export: {time.perf_counter() - t:.2f} s; ONNX file {export.bytes / 1024:,.1f} KiB (LightGBM text "
              f"model {native_bytes / 1024:,.1f} KiB)")
        print(f"parity on {export.n_rows:,} held-out rows ({export.output}): max |diff| {export.max_abs_diff:.2e}, "
              f"tolerance atol {export.tolerance['atol']:g} rtol {export.tolerance['rtol']:g}, "
              f"{export.n_mismatched} rows outside: {'OK' if export.parity_ok else 'FAILED'}")

        from ev_assets.lib.ml.registry import Registry

        t = time.perf_counter()
        registry = Registry(Path(tmp) / "mlflow")
        registry.ensure([trained.name])
        t_ensure = time.perf_counter() - t
        t = time.perf_counter()
        registered = registry.register(trained, tags={"benchmark": "onnx_latency"})
        t_register = time.perf_counter() - t
        t = time.perf_counter()
        decision = registry.decide(trained, registered)
        t_decide = time.perf_counter() - t
        t = time.perf_counter()
        pyfunc = registry.load_champion(trained.name)
        t_load = time.perf_counter() - t
        print(f"mlflow: ensure (schema + experiment) {t_ensure:.1f} s, register {t_register:.2f} s, gate "
              f"{t_decide:.2f} s ({'promoted' if decision.promoted else 'not promoted'}), load champion as pyfunc "
              f"{t_load:.2f} s")

        figures = latency(trained, export.path, pyfunc_model=pyfunc, runs=args.runs)

    single, batch = figures["single_row_median_us"], figures["batch_median_us"]
    labels = {"lightgbm_booster_numpy_us": "LightGBM Booster, numpy row",
              "lightgbm_booster_dataframe_us": "LightGBM Booster, 1-row DataFrame",
              "lightgbm_booster_dataframe_default_threads_us": "  the same, LightGBM's default threads",
              "mlflow_pyfunc_us": "MLflow pyfunc, 1-row DataFrame (*)",
              "onnxruntime_us": "ONNX Runtime, float32 row"}
    onnx_us = single["onnxruntime_us"]
    print(f"\nlatency (one thread, except the two rows marked below): median of {args.runs:,} single-row calls; "
          f"batch of {figures['batch_rows']:,} rows (median of 20)")
    print(f"{'runtime':<36} {'1 row (µs)':>11} {'vs ONNX':>8} {'batch (ms)':>11}")
    for key, label in labels.items():
        print(f"{label:<36} {single[key]:>11.1f} {single[key] / onnx_us:>7.1f}x {batch[key] / 1000:>11.2f}")
    print("(*) default threads: MLflow's LightGBM pyfunc wrapper drops predict params, so num_threads cannot be "
          "passed;\n    OMP_NUM_THREADS=1 in the environment makes it (and the default-threads row) single-threaded")
    print(f"\n{versions()}; load average at the end {os.getloadavg()[0]:.2f}; "
          f"wall {time.perf_counter() - started:.0f} s")

    if args.results_json:
        args.results_json.parent.mkdir(parents=True, exist_ok=True)
        args.results_json.write_text(json.dumps({
            "trees": trained.booster.num_trees(), "leaves": args.leaves, "features": len(FEATURES),
            "heldout_rows": len(trained.test_y), "export": {**export.as_dict(), "path": None},
            "lightgbm_model_bytes": native_bytes, "latency": figures,
            "mlflow_seconds": {"ensure": t_ensure, "register": t_register, "decide": t_decide, "load": t_load},
            "versions": versions(), "load_average": os.getloadavg()[0],
        }, indent=2))
    return 0 if export.parity_ok else 1


if __name__ == "__main__":
    sys.exit(main())
