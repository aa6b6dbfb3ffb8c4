"""The prediction log: one JSON line per prediction, append-only, readable after a crash, whole lines under
concurrent writers (threads and processes)."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import uuid
from pathlib import Path

import pandas as pd
import pytest

from ev_assets.lib import predlog
from ev_assets.lib.settings import Settings


def record(i: int = 0, **extra) -> dict:
    return {"request_id": uuid.uuid4().hex, "endpoint": "/predict/availability", "model": "station_available_10min",
            "version": "3", "inputs": {"hour": 7.0, "lag": float("nan"), "n": i}, "request": {"station_id": "S1"},
            "output": {"probability_available": 0.25}, "latency_ms": 0.8, **extra}


@pytest.fixture
def settings(tmp_path) -> Settings:
    yield Settings(data_dir=tmp_path / "data")
    predlog.close_all()


def lines(settings: Settings) -> list[bytes]:
    return [line for path in sorted(settings.prediction_log_dir.glob("*.jsonl"))
            for line in path.read_bytes().split(b"\n") if line]


def test_a_record_is_one_line_of_its_utc_day_and_reads_back(settings):
    first = record(station_id="S1", target_at="2024-05-01T22:15:00.000Z", at="2024-05-01T23:59:59.999+00:00")
    second = record(1, at="2024-05-02T01:30:00+02:00")  # 23:30 UTC on May 1st
    third = record(2, at="2024-05-02T00:00:00.000Z")
    for r in (first, second, third):
        predlog.append(settings, r)

    files = sorted(p.name for p in settings.prediction_log_dir.iterdir())
    assert files == ["2024-05-01.jsonl", "2024-05-02.jsonl"]
    on_first_day = (settings.prediction_log_dir / "2024-05-01.jsonl").read_text().splitlines()
    assert [json.loads(line)["request_id"] for line in on_first_day] == [first["request_id"], second["request_id"]]
    assert json.loads(on_first_day[0])["inputs"]["lag"] is None  # NaN is not JSON: logged as null

    df = predlog.read(settings.prediction_log_dir)
    assert list(df["request_id"]) == [first["request_id"], second["request_id"], third["request_id"]]
    assert df["at"].iloc[0] == pd.Timestamp("2024-05-01 23:59:59.999", tz="UTC")
    assert df["at"].iloc[1] == pd.Timestamp("2024-05-01 23:30", tz="UTC")
    assert df["target_at"].iloc[0] == pd.Timestamp("2024-05-01 22:15", tz="UTC") and pd.isna(df["target_at"].iloc[1])
    assert df["inputs"].iloc[2] == {"hour": 7.0, "lag": None, "n": 2}
    assert df["station_id"].iloc[0] == "S1" and df.attrs["skipped_lines"] == 0

    later = predlog.read(settings.prediction_log_dir, since=pd.Timestamp("2024-05-01 23:45", tz="UTC"))
    assert list(later["request_id"]) == [first["request_id"], third["request_id"]]


def test_an_empty_or_missing_log_reads_as_an_empty_frame(settings):
    df = predlog.read(settings.prediction_log_dir)
    assert df.empty and {"request_id", "at", "model", "version", "inputs", "target_at"} <= set(df.columns)
    assert df.attrs["skipped_lines"] == 0


def test_a_record_without_its_required_fields_is_refused(settings):
    with pytest.raises(ValueError, match="model"):
        predlog.append(settings, {k: v for k, v in record().items() if k != "model"})
    assert not settings.prediction_log_dir.exists() or not lines(settings)


def test_a_torn_last_line_is_skipped_counted_and_ended_by_the_next_writer(settings):
    kept = [record(i) for i in range(3)]
    path = None
    for r in kept:
        path = predlog.append(settings, {**r, "at": "2024-05-01T12:00:00.000Z"})
    predlog.close_all()  # the writer "crashes" in the middle of its next line
    with open(path, "ab") as handle:
        handle.write(predlog.encode(record(99, at="2024-05-01T12:00:01.000Z"))[:57])

    df = predlog.read(settings.prediction_log_dir)
    assert list(df["request_id"]) == [r["request_id"] for r in kept] and df.attrs["skipped_lines"] == 1

    after = record(4, at="2024-05-01T12:00:02.000Z")  # a new service process appends after the crash
    predlog.append(settings, after)
    df = predlog.read(settings.prediction_log_dir)
    assert list(df["request_id"]) == [*(r["request_id"] for r in kept), after["request_id"]]
    assert df.attrs["skipped_lines"] == 1  # the torn fragment stays one skipped line, the new record is whole


def test_a_log_file_moved_away_is_started_again(settings):
    first = predlog.append(settings, record(0, at="2024-05-01T12:00:00.000Z"))
    os.replace(first, first.with_suffix(".archived"))
    predlog.append(settings, record(1, at="2024-05-01T12:00:01.000Z"))
    assert first.exists() and len(predlog.read(settings.prediction_log_dir)) == 1


def test_fsync_mode_writes_the_same_lines(settings):
    synced = settings.with_(predlog_fsync=True)
    predlog.append_all(synced, [record(0), record(1)])
    assert len(predlog.read(synced.prediction_log_dir)) == 2


def _write_many(data_dir: str, worker: int, n: int, payload: int) -> None:
    settings = Settings(data_dir=Path(data_dir))
    if worker < 100:
        predlog.close_all()  # a forked child must not share the parent's descriptors' cache
    blob = f"w{worker}-" + "x" * payload  # far over PIPE_BUF and a page: one write must still be one line
    for i in range(n):
        predlog.append(settings, {**record(i), "at": "2024-05-01T12:00:00.000Z", "request": {"blob": blob},
                                  "worker": worker})


def test_concurrent_appends_from_processes_and_threads_never_interleave(settings):
    processes, per_process, payload = 4, 150, 20_000
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_write_many, args=(str(settings.data_dir), w, per_process, payload))
               for w in range(processes)]
    threads = [threading.Thread(target=_write_many, args=(str(settings.data_dir), 100 + t, per_process, payload))
               for t in range(2)]
    for w in (*workers, *threads):
        w.start()
    for w in (*workers, *threads):
        w.join(120)
    assert all(w.exitcode == 0 for w in workers)

    raw = lines(settings)
    assert len(raw) == (processes + 2) * per_process
    parsed = [json.loads(line) for line in raw]  # every line is one whole record
    for r in parsed:
        assert r["request"]["blob"] == f"w{r['worker']}-" + "x" * payload
    df = predlog.read(settings.prediction_log_dir)
    assert len(df) == len(raw) and df["request_id"].is_unique and df.attrs["skipped_lines"] == 0
    assert df["worker"].value_counts().to_dict() == {w: per_process for w in [*range(processes), 100, 101]}
