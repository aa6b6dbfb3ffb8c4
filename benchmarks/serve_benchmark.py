"""Latency of the prediction service under load, beside the model's own single-row predict time.

Starts `python -m ev_assets.api` (one uvicorn worker) on a free port of 127.0.0.1 over a data root that `make demo`
built, then sends `POST /predict/availability` at a fixed rate (open loop: request i is due at start + i / rate,
and its latency counts from that moment, so a stalled server cannot hide its queue), and reports throughput and
p50 / p90 / p99 / max latency. The target on the 2-core machine: p99 <= 10 ms at 200 requests/s.

    .venv/bin/python benchmarks/serve_benchmark.py [--rate 200] [--seconds 30] [--results-json out.json]

The load generator shares the two cores with the server (as a client on the same host does).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stations(data_dir: Path, n: int = 20) -> list[str]:
    import pandas as pd

    folder = data_dir / "ml" / "features" / "station_time_features"
    frame = pd.read_parquet(next(folder.glob("*.parquet")), columns=["station_id"])
    return sorted(frame["station_id"].astype(str).unique())[:n]


def model_predict_us(data_dir: Path, repeats: int = 2000) -> dict:
    """One-row predict of the champion itself (LightGBM Booster, numpy row, one thread), in microseconds."""
    import pandas as pd

    from ev_assets.lib.ml.registry import Registry

    registry = Registry(data_dir / "mlflow")
    champion = registry.champion("station_available_10min")
    booster = registry.load_version("station_available_10min", champion.version, flavor="lightgbm")
    features = booster.feature_name()
    folder = data_dir / "ml" / "features" / "station_time_features"
    row = pd.read_parquet(next(folder.glob("*.parquet")), columns=features).tail(1).to_numpy(dtype=float)
    for _ in range(50):
        booster.predict(row, num_threads=1)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        booster.predict(row, num_threads=1)
        times.append(time.perf_counter() - start)
    return {"model_version": champion.version, "p50_us": float(np.percentile(times, 50) * 1e6),
            "p99_us": float(np.percentile(times, 99) * 1e6)}


async def load(url: str, bodies: list[dict], rate: float, seconds: float) -> dict:
    import httpx

    total = int(rate * seconds)
    latencies = np.full(total, np.nan)
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
        for body in bodies[:5]:  # warm up: first requests load caches
            await client.post("/predict/availability", json=body)
        start = time.perf_counter()

        async def one(i: int) -> None:
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            response = await client.post("/predict/availability", json=bodies[i % len(bodies)])
            latencies[i] = time.perf_counter() - due
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        await asyncio.gather(*(one(i) for i in range(total)))
        wall = time.perf_counter() - start
    done = latencies[~np.isnan(latencies)] * 1000
    return {
        "requests": total, "wall_s": round(wall, 2), "throughput_rps": round(total / wall, 1),
        "statuses": statuses,
        **{f"p{q}_ms": round(float(np.percentile(done, q)), 2) for q in (50, 90, 99)},
        "max_ms": round(float(done.max()), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second (default 500, the target of issue 18)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to send (default 30)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("EV_DATA_DIR", ROOT / "data")))
    parser.add_argument("--results-json", type=Path)
    args = parser.parse_args(argv)
    data_dir = args.data_dir.resolve()
    if not (data_dir / "mlflow" / "mlflow.db").exists():
        print(f"no registry in {data_dir}: run `make demo` first", file=sys.stderr)
        return 1

    from bench.machine import load_average, machine_line

    print(machine_line("ev_assets", ("fastapi", "uvicorn", "lightgbm", "httpx")), flush=True)
    load_at_start = load_average()
    port = free_port()
    env = {**os.environ, "EV_DATA_DIR": str(data_dir), "EV_SERVE_PORT": str(port)}
    server = subprocess.Popen([sys.executable, "-m", "ev_assets.api"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit("the service did not start within 2 minutes")
        bodies = [{"station_id": s, "horizon_minutes": h} for s in stations(data_dir) for h in (10, 60)]
        result = asyncio.run(load(url, bodies, args.rate, args.seconds))
    finally:
        server.terminate()
        server.wait(timeout=30)
    result = {"endpoint": "POST /predict/availability", "target_rps": args.rate, **result,
              "model_single_row": model_predict_us(data_dir),
              "target_met": result["p99_ms"] <= 10.0 and result["throughput_rps"] >= 0.98 * args.rate,
              "load_average": [round(load_at_start, 2), round(load_average(), 2)]}
    print(json.dumps(result, indent=1))
    if args.results_json:
        args.results_json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
