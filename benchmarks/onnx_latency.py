"""ONNX export benchmark: LightGBM models served three ways, one row at a time.

    .venv/bin/python benchmarks/onnx_latency.py                      # a synthetic model it trains itself
    .venv/bin/python benchmarks/onnx_latency.py --trees 500 --leaves 63 --results-json /tmp/onnx.json
    .venv/bin/python benchmarks/onnx_latency.py --data-dir data      # the exported champions of `make demo`

Without --data-dir (the synthetic mode), it trains a binary classifier ("is the station occupied next hour?")
on synthetic station-hours shaped like the platform's station features, builds a `core.TrainedModel` with its
baselines, then:

1. exports it with `ev_assets.lib.ml.export.to_onnx` and checks parity with the booster on the held-out rows
   (atol = rtol = 1e-4);
2. registers it in a throw-away MLflow registry (`ev_assets.lib.ml.registry`, sqlite in a temporary folder),
   passes the champion gate and loads `models:/<name>@champion` as an MLflow pyfunc model;
3. times single-row predictions (median over --runs calls, one thread where the runtime allows it) of the
   LightGBM Booster (numpy row and one-row DataFrame; the DataFrame also with LightGBM's default threads), the
   MLflow pyfunc model (one-row DataFrame; it always runs LightGBM's default threads, see OMP_NUM_THREADS) and
   ONNX Runtime (float32 row), and a batch of 1,000 held-out rows for each.

Nothing is written to the repository; the temporary folder is removed at the end.

With --data-dir PATH (a data root built by `make demo`, read only), it measures the real exported champions of
the models exported to ONNX (`ONNX_MODELS` of ev_assets/defs/ml/models.py), each:

1. the champion version from the root's registry (`Registry(PATH / "mlflow")`), loaded as a `lightgbm.Booster`
   and as an MLflow pyfunc model; the ONNX file `PATH/ml/onnx/<model>.onnx` the ML job exported;
2. the held-out rows rebuilt from the feature set the run names (`PATH/ml/features/<set>/*.parquet`) the way
   training builds them: station models round with `core.float32_exact` and take the last time block of
   `core.time_split`; the plug-in model builds its rows with `telemetry.features.feature_frame` and
   `plugin.model_matrix`. Their hash is compared with the version's `heldout_sha256` tag: equal means these are
   exactly the rows the champion was judged on (otherwise the latest time block of the current feature set);
3. file sizes: the ONNX file, the LightGBM model text (`model.lgb`) and the whole MLflow model folder;
4. parity: `export.check_parity` (ONNX Runtime float32 vs the Booster on every held-out row, max |diff|);
5. single-row latency, median and p99 of --runs calls per runtime: Booster with a numpy row (one thread),
   Booster with a 1-row DataFrame (one thread, and LightGBM's default threads), pyfunc with a 1-row DataFrame
   (MLflow drops predict params: LightGBM's default threads), ONNX Runtime with a float32 row (one thread). Each
   call takes the next of --distinct-rows held-out rows, and the runtimes take turns in blocks of 100 calls, so
   that a change of the machine's load hits all of them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
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
    p.add_argument("--data-dir", type=Path, default=None,
                   help="a data root built by `make demo`: measure its exported champions (read only) instead of a "
                        "synthetic model")
    p.add_argument("--distinct-rows", type=int, default=500,
                   help="with --data-dir: single-row calls cycle through this many held-out rows")
    args = p.parse_args(argv)
    if args.data_dir is not None:
        return champions_main(args)
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


# --- --data-dir: the exported champions of a data root ----------------------------------------------------------
SINGLE_ROW_LABELS = {
    "lightgbm_booster_numpy": "LightGBM Booster, numpy row, 1 thread",
    "lightgbm_booster_dataframe": "LightGBM Booster, 1-row DataFrame, 1 thread",
    "lightgbm_booster_dataframe_default_threads": "  the same, LightGBM's default threads",
    "mlflow_pyfunc": "MLflow pyfunc, 1-row DataFrame (*)",
    "onnxruntime": "ONNX Runtime, float32 row, 1 thread",
}


def station_time_heldout(data_dir: Path, name: str, features: list[str], params: dict):
    """The held-out rows of `station_available_<h>min` as `stations.train_availability_models` builds them."""
    frame = _read_feature_set(data_dir, "station_time_features")
    horizon = int(params.get("horizon_minutes") or name.removeprefix("station_available_").removesuffix("min"))
    target = f"available_in_{horizon}min"
    frame = core.float32_exact(frame, features)  # the ONNX export reads float32; serving rounds the same way
    frame["polled_at"] = pd.to_datetime(frame["polled_at"], utc=True)
    rows = frame[frame[target].notna()].copy()
    rows[target] = rows[target].astype(int)
    _, _, test, bounds = core.time_split(rows, "polled_at")
    return test[features].reset_index(drop=True), test[target].reset_index(drop=True).rename(name), bounds


def telemetry_heldout(data_dir: Path, name: str, features: list[str], params: dict):
    """The held-out rows of `vehicle_plugged_in_<h>min` as `plugin.train_plugin_models` builds them."""
    from ev_assets.lib.ml import plugin
    from ev_assets.lib.sources.telemetry.features import feature_frame

    traces = _read_feature_set(data_dir, "vehicle_telemetry_features")
    frame, _ = feature_frame(traces, float(params["split_horizon_minutes"]), float(params["split_gap_minutes"]))
    target = "plugged_in_target" if "plugged" in name else "energy_to_full_target"
    rows = frame[frame[target].notna()]
    _, _, test, bounds = core.time_split(rows, "reading_at", plugin.VALID_SHARE, plugin.TEST_SHARE)
    test_X = plugin.model_matrix(test).reset_index(drop=True)
    return test_X[features], test[target].astype(float).reset_index(drop=True), bounds


HELDOUT_BUILDERS = {"station_time_features": station_time_heldout, "vehicle_telemetry_features": telemetry_heldout}


def _read_feature_set(data_dir: Path, feature_set: str) -> pd.DataFrame:
    files = sorted((data_dir / "ml" / "features" / feature_set).glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no feature set {data_dir}/ml/features/{feature_set}/*.parquet: run `make demo`")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def time_single_rows(calls: dict, n_rows: int, runs: int, warmup: int = 100, block: int = 100) -> dict:
    """{runtime: {"median_us", "p99_us", "calls"}}: `calls[k](i)` predicts held-out row i; the runtimes take
    turns in blocks of `block` calls, every call the next row."""
    samples: dict[str, list[int]] = {k: [] for k in calls}
    for call in calls.values():
        for i in range(warmup):
            call(i % n_rows)
    position = 0
    while position < runs:
        size = min(block, runs - position)
        for key, call in calls.items():
            times = samples[key]
            for i in range(position, position + size):
                row = i % n_rows
                start = time.perf_counter_ns()
                call(row)
                times.append(time.perf_counter_ns() - start)
        position += size
    return {k: {"median_us": statistics.median(v) / 1000,
                "p99_us": float(np.percentile(np.asarray(v), 99)) / 1000, "calls": len(v)}
            for k, v in samples.items()}


def measure_champion(registry, data_dir: Path, name: str, runs: int, distinct_rows: int) -> dict:
    from ev_assets.lib.ml import export
    from ev_assets.lib.ml.registry import heldout_hash

    champion = registry.champion(name)
    if champion is None:
        raise LookupError(f"{name}: no champion in {registry.root}")
    client = registry.client
    run = client.get_run(champion.run_id)
    version = client.get_model_version(name, champion.version)
    onnx_path = data_dir / "ml" / "onnx" / f"{name}.onnx"
    if not onnx_path.exists():
        raise FileNotFoundError(f"{name}: no ONNX export at {onnx_path}")
    feature_set = run.data.tags.get("feature_set", "")
    if feature_set not in HELDOUT_BUILDERS:
        raise ValueError(f"{name}: feature set {feature_set!r} of its run has no held-out row builder here")

    t = time.perf_counter()
    booster = registry.load_version(name, champion.version, flavor="lightgbm")
    t_booster = time.perf_counter() - t
    t = time.perf_counter()
    pyfunc = registry.load_version(name, champion.version)
    t_pyfunc = time.perf_counter() - t
    features = list(booster.feature_name())

    t = time.perf_counter()
    test_X, test_y, bounds = HELDOUT_BUILDERS[feature_set](data_dir, name, features, run.data.params)
    t_rows = time.perf_counter() - t
    recorded = version.tags.get("heldout_sha256")
    same_rows = recorded is not None and heldout_hash(test_X, test_y) == recorded
    task = run.data.tags.get("task", "classification")
    # evaluation: not needed by check_parity / the sessions below (the registry holds the champion's)
    trained = core.TrainedModel(name=name, task=task, booster=booster, features=features, params={},
                                evaluation=None, test_X=test_X, test_y=test_y, splits=bounds)
    parity = export.check_parity(trained, onnx_path)

    location = client.get_model_version_download_uri(name, champion.version)
    model_dir = Path(location.removeprefix("file://")) if location.startswith("file://") else None
    sizes = {"onnx_bytes": onnx_path.stat().st_size,
             "lightgbm_text_bytes": len(booster.model_to_string().encode()),
             "mlflow_model_lgb_bytes": (model_dir / "model.lgb").stat().st_size
             if model_dir and (model_dir / "model.lgb").exists() else None,
             "mlflow_model_folder_bytes": _folder_bytes(model_dir) if model_dir and model_dir.is_dir() else None}

    # the pyfunc model predicts what the booster does (its signature enforces the column types)
    sample = test_X.iloc[:1000]
    pyfunc_diff = float(np.max(np.abs(np.asarray(pyfunc.predict(sample), dtype=float).ravel()
                                      - booster.predict(sample, num_threads=1))))

    # single rows, evenly spread over the held-out block (which is in time order)
    picks = np.unique(np.linspace(0, len(test_X) - 1, min(distinct_rows, len(test_X))).round().astype(int))
    frames = [test_X.iloc[[i]] for i in picks]
    numpy_rows = [f.to_numpy(dtype=np.float64) for f in frames]
    f32_rows = [export._as_float32(f) for f in frames]
    session = export._session(onnx_path)
    feed = export.INPUT_NAME
    calls = {
        "lightgbm_booster_numpy": lambda i: booster.predict(numpy_rows[i], num_threads=1),
        "lightgbm_booster_dataframe": lambda i: booster.predict(frames[i], num_threads=1),
        "lightgbm_booster_dataframe_default_threads": lambda i: booster.predict(frames[i]),
        "mlflow_pyfunc": lambda i: pyfunc.predict(frames[i]),
        "onnxruntime": lambda i: session.run(None, {feed: f32_rows[i]}),
    }
    latency = time_single_rows(calls, len(picks), runs)
    return {
        "model": name, "version": champion.version, "run_id": champion.run_id, "task": task,
        "feature_set": feature_set, "features": len(features), "trees": booster.num_trees(),
        "heldout_rows": len(test_X), "heldout_block": f"{bounds['test_start']} .. {bounds['test_end']}",
        "same_rows_as_champion": same_rows, "timed_rows": len(picks), "sizes": sizes,
        "parity": {**parity.as_dict(), "path": str(onnx_path)}, "pyfunc_max_abs_diff": pyfunc_diff,
        "load_seconds": {"booster": t_booster, "pyfunc": t_pyfunc, "heldout_rows": t_rows},
        "single_row": latency,
    }


def champions_main(args) -> int:
    from ev_assets.defs.ml.models import ONNX_MODELS
    from ev_assets.lib.ml.registry import Registry

    started = time.perf_counter()
    data_dir = args.data_dir.expanduser().resolve()
    if not (data_dir / "mlflow" / "mlflow.db").exists():
        print(f"no MLflow registry at {data_dir}/mlflow/mlflow.db: build the data root with `make demo`")
        return 2
    load = lambda: " / ".join(f"{x:.2f}" for x in os.getloadavg())  # noqa: E731
    print(f"machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python "
          f"{platform.python_version()}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}; load "
          f"average 1 / 5 / 15 min {load()} (other processes share the cores)")
    print(f"data root {data_dir}: champions of {', '.join(ONNX_MODELS)}; {args.runs:,} single-row calls per "
          f"runtime, cycling through up to {args.distinct_rows:,} held-out rows\n")
    registry = Registry(data_dir / "mlflow")
    results, ok = [], True
    for name in ONNX_MODELS:
        r = measure_champion(registry, data_dir, name, args.runs, args.distinct_rows)
        results.append(r)
        sizes, parity, lat = r["sizes"], r["parity"], r["single_row"]
        ok &= parity["parity_ok"]
        kib = lambda b: "-" if b is None else f"{b / 1024:,.1f} KiB"  # noqa: E731
        print(f"{name} v{r['version']} ({r['task']}, {r['trees']} trees, {r['features']} features; run "
              f"{r['run_id'][:8]})")
        which = ("the rows the champion was judged on (heldout_sha256 matches)" if r["same_rows_as_champion"] else
                 "NOT the champion's recorded rows (feature set rebuilt since): the latest time block")
        print(f"  held-out rows: {r['heldout_rows']:,} ({r['heldout_block']}), {which}; rebuilt in "
              f"{r['load_seconds']['heldout_rows']:.1f} s")
        print(f"  files: ONNX {kib(sizes['onnx_bytes'])}, LightGBM model text {kib(sizes['lightgbm_text_bytes'])} "
              f"(model.lgb {kib(sizes['mlflow_model_lgb_bytes'])}), MLflow model folder "
              f"{kib(sizes['mlflow_model_folder_bytes'])}")
        print(f"  parity ONNX vs LightGBM on {parity['n_rows']:,} rows ({parity['output']}): max |diff| "
              f"{parity['max_abs_diff']:.2e}, {parity['n_mismatched']} outside atol {parity['tolerance']['atol']:g} "
              f"rtol {parity['tolerance']['rtol']:g}: {'OK' if parity['parity_ok'] else 'FAILED'}; pyfunc vs Booster "
              f"max |diff| {r['pyfunc_max_abs_diff']:.1e}")
        print(f"  load: Booster {r['load_seconds']['booster']:.2f} s, pyfunc {r['load_seconds']['pyfunc']:.2f} s")
        onnx_median = lat["onnxruntime"]["median_us"]
        print(f"  {'single row, ' + str(r['timed_rows']) + ' distinct rows':<46} {'median µs':>10} {'p99 µs':>9} "
              f"{'median vs ONNX':>15}")
        for key, label in SINGLE_ROW_LABELS.items():
            m, p99 = lat[key]["median_us"], lat[key]["p99_us"]
            print(f"  {label:<46} {m:>10.1f} {p99:>9.1f} {m / onnx_median:>14.1f}x")
        print()
    print("(*) MLflow's LightGBM pyfunc wrapper drops predict params, so num_threads cannot be passed; "
          "OMP_NUM_THREADS=1\n    in the environment makes it (and the default-threads row) single-threaded")
    print(f"\n{versions()}; load average at the end {load()}; wall {time.perf_counter() - started:.0f} s")
    if args.results_json:
        args.results_json.parent.mkdir(parents=True, exist_ok=True)
        args.results_json.write_text(json.dumps({
            "data_dir": str(data_dir), "runs": args.runs, "models": results, "versions": versions(),
            "load_average_end": os.getloadavg(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        }, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
