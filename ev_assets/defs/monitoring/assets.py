"""Monitoring assets: the prediction log, the feature drift of the station availability models against what their
champion was trained on (Evidently reports under `<data root>/monitoring/drift/<model>/`), and their live error.
The checks `no_drift` and `live_error_within_limit` are what the retraining sensor watches."""

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pandas as pd

from ev_assets.defs.ml.families import FAMILIES, Family
from ev_assets.defs.ml.models import key_of
from ev_assets.defs.ml.features import feature_dir, read_feature_set
from ev_assets.defs.resources import EvConfig, ModelRegistry
from ev_assets.lib.ml import catalog
from ev_assets.lib.settings import Settings

MONITORED = catalog.MONITORED  # models with a drift report and live error
NO_DRIFT = "no_drift"
REQUESTS_NO_DRIFT = "requests_no_drift"
MIN_REQUEST_ROWS = 50  # distinct requested feature rows a request-drift report needs
LIVE_LIMIT = "live_error_within_limit"
PREDICTION_LOG = dg.AssetKey(["monitoring", "prediction_log"])
LIVE_ERROR = dg.AssetKey(["monitoring", "live_error"])
# compared as categories (Jensen-Shannon): integer codes and 0/1 flags; every other feature as a number (Wasserstein)
CATEGORICAL_FEATURES = ("operator_code", "city_code", "any_available", "any_available_lag_10min",
                        "any_available_lag_30min", "any_available_lag_60min", "has_dc", "has_ac", "is_open_24_7")
DRIFT_SEED = 0  # the same data gives the same samples, hence the same report


def drift_key(model: str) -> dg.AssetKey:
    return dg.AssetKey(["monitoring", f"drift_{model}"])


def family_of(model: str) -> Family:
    return next(family for family in FAMILIES if model in family.models)


MONITORED_FAMILIES = tuple(dict.fromkeys(family_of(m) for m in MONITORED))


# --- the prediction log ------------------------------------------------------------------------------------------
def read_log(settings: Settings, since: datetime | None = None) -> pd.DataFrame:
    from ev_assets.lib import predlog

    return predlog.read(settings.prediction_log_dir, since=since)


def recent_log(settings: Settings, hours: int) -> pd.DataFrame:
    """The records of the latest `hours` before the newest record (only the day files that can hold them are read)."""
    from ev_assets.lib import predlog

    files = predlog.files(settings.prediction_log_dir)
    if not files:
        return read_log(settings)
    newest_day = pd.Timestamp(files[-1].name.split(".")[0], tz="UTC")
    log = read_log(settings, since=(newest_day - pd.Timedelta(hours=hours)).to_pydatetime())
    if log.empty:
        return log
    return log[log["at"] > log["at"].max() - pd.Timedelta(hours=hours)].reset_index(drop=True)


@dg.asset(key=PREDICTION_LOG, group_name="monitoring", kinds={"jsonl"})
def prediction_log(context: dg.AssetExecutionContext, ev_config: EvConfig) -> dg.MaterializeResult:
    """Every answer of the prediction service (`make serve`): one JSON line per prediction, one file per UTC day
    under `<data root>/serving/predictions/` (request id, time, model and version, inputs, output, latency; station
    and target time for availability forecasts). Rows, rows per model and endpoint, time range, torn lines."""
    settings = ev_config.settings()
    log = read_log(settings)
    metadata = {
        "dagster/row_count": len(log),
        "path": dg.MetadataValue.path(str(settings.prediction_log_dir)),
        "files": int(log.attrs.get("files", 0)),
        "skipped_lines": int(log.attrs.get("skipped_lines", 0)),
        "per_model": dg.MetadataValue.json({str(k): int(v) for k, v in log["model"].value_counts().items()}),
        "per_model_version": dg.MetadataValue.json(
            {f"{m} v{v}": int(n) for (m, v), n in log.groupby(["model", "version"]).size().items()} if len(log) else {}),
        "per_endpoint": dg.MetadataValue.json({str(k): int(v) for k, v in log["endpoint"].value_counts().items()}),
    }
    if len(log):
        metadata["time_from"] = log["at"].min().isoformat()
        metadata["time_to"] = log["at"].max().isoformat()
    if metadata["skipped_lines"]:
        context.log.warning(f"{metadata['skipped_lines']} torn or malformed line(s) skipped in the prediction log")
    return dg.MaterializeResult(metadata=metadata)


# --- drift -------------------------------------------------------------------------------------------------------
def reference_model(store, model: str) -> dict | None:
    """The version a drift report compares with: the champion, else the newest registered version (None: none).
    With its run's split boundaries and features. `store`: the data root's `Registry`."""
    champion = store.champion(model)
    if champion is not None:
        version, run_id, is_champion = champion.version, champion.run_id, True
    else:
        versions = store.versions(model)
        if not versions:
            return None
        version, is_champion = versions[-1], False
        run_id = store.client.get_model_version(model, version).run_id
    params = store.client.get_run(run_id).data.params
    features = [f for f in params.get("features", "").split(",") if f]
    return {"version": version, "run_id": run_id, "champion": is_champion, "features": features,
            "train_start": params.get("split_train_start"), "train_end": params.get("split_valid_start")}


def monitored_columns(features: list[str], frame: pd.DataFrame) -> list[str]:
    """The model's features without the calendar (hour, weekday, holiday...): those say when a row is, which the
    hour-of-week matching already holds equal."""
    from ev_assets.lib.ml.stations import AVAILABILITY_FEATURES, CALENDAR

    if not features:
        features = [c for c in frame.columns if c in AVAILABILITY_FEATURES or c.startswith("poi_")]
    return [c for c in features if c not in CALENDAR and c in frame.columns]


def logged_rows(settings: Settings, model: str, columns: list[str]) -> pd.DataFrame:
    """The distinct feature rows of the requests the service answered with `model` in the latest window of the
    log, with `station_id` and `polled_at` = the time of the features (`features_at`, else the request time). A row
    asked for many times (1,200 requests for one poll slot) counts once: drift is about what is asked, not how
    often."""
    log = recent_log(settings, settings.drift_window_hours)
    log = log[log["model"] == model] if len(log) else log
    if log.empty:
        return pd.DataFrame(columns=[*columns, "station_id", "polled_at"])
    rows = pd.DataFrame([inputs if isinstance(inputs, dict) else {} for inputs in log["inputs"]], index=log.index)
    rows = rows.reindex(columns=columns).apply(pd.to_numeric, errors="coerce")
    when = log["features_at"] if "features_at" in log else pd.Series(pd.NaT, index=log.index)
    rows["polled_at"] = pd.to_datetime(when, utc=True, errors="coerce").fillna(log["at"])
    rows["station_id"] = log["station_id"].astype(str) if "station_id" in log else None
    rows = rows[rows[columns].notna().any(axis=1)]  # a request without features says nothing
    return rows.drop_duplicates(subset=[*columns, "station_id", "polled_at"]).reset_index(drop=True)


def drift_inputs(settings: Settings, family: Family, model: str, reference: dict) -> dict:
    """What a drift report compares, like with like: `reference` (the champion's training rows, from its first
    full day of look-back) against `current` (the latest `drift_window_hours` of the feature set: the feed), and
    the requests' distinct feature rows (`requests`) against their own reference (`request_reference`: the same
    training rows of the stations they asked about); with `columns` and `notes`."""
    from ev_assets.lib.ml.stations import ROLLING_HOURS

    frames = read_feature_set(settings, family)
    if "features" not in frames or frames["features"].empty:
        raise dg.Failure(f"ml/{family.feature_set} is empty or missing under {feature_dir(settings, family)}: "
                         f"materialize it (ml_job) first")
    frame = frames["features"]
    time = family.time_column
    frame[time] = pd.to_datetime(frame[time], utc=True)
    columns = monitored_columns(reference["features"], frame)

    end = frame[time].max()
    window_start = end - pd.Timedelta(hours=settings.drift_window_hours)
    polls = frame[frame[time] > window_start][[*columns, time]]
    logged = logged_rows(settings, model, columns).rename(columns={"polled_at": time})

    train_end = pd.Timestamp(reference["train_end"]) if reference.get("train_end") else window_start
    train_start = pd.Timestamp(reference["train_start"]) if reference.get("train_start") else frame[time].min()
    training = frame[(frame[time] >= train_start) & (frame[time] < train_end)]
    # the first day of a history has rolling means and time-in-state cut short by its start: leave it out
    settled = training[training[time] >= train_start + pd.Timedelta(hours=max(ROLLING_HOURS))]
    ref = settled if len(settled) else training
    asked = set(logged["station_id"].dropna().astype(str)) if len(logged) else set()
    request_ref = ref[ref["station_id"].astype(str).isin(asked)] if asked and "station_id" in ref else ref
    notes = {
        "reference_version": reference["version"],
        "reference_is_champion": reference["champion"],
        "reference_span": f"{train_start} .. {train_end} (training block of the run; first "
                          f"{max(ROLLING_HOURS)} h {'left out' if len(settled) else 'kept: nothing else'})",
        "current_rows_from_polls": len(polls),
        "current_rows_from_requests": len(logged),
        "window_hours": settings.drift_window_hours,
    }
    return {"reference": ref[[*columns, time]], "current": polls, "columns": columns, "notes": notes,
            "requests": logged[[*columns, time]], "request_reference": request_ref[[*columns, time]]}


def drift_asset(model: str) -> dg.AssetsDefinition:
    family = family_of(model)
    key = drift_key(model)

    @dg.asset(
        key=key,
        group_name="monitoring",
        deps=[dg.AssetKey(["ml", family.feature_set]), key_of(model, "champion"), PREDICTION_LOG],
        kinds={"evidently"},
        check_specs=[dg.AssetCheckSpec(NO_DRIFT, asset=key, description=(
            "WARN (non-blocking): fails when more than `drift_share_limit` (EV_DRIFT_SHARE_LIMIT, 0.5) of the "
            "compared features of the feed's window drifted from the training reference. The retraining sensor "
            "`retrain_on_drift` watches it.")),
            dg.AssetCheckSpec(REQUESTS_NO_DRIFT, asset=key, description=(
                "WARN (non-blocking, not watched by the sensor): the distinct feature rows of the requests the "
                "service answered with the model in the window (each counted once however often it was asked) "
                f"against the training rows of the stations asked about; passes with a note under {MIN_REQUEST_ROWS} "
                "distinct rows. What users ask about changing is not the feed drifting."))],
        description=(
            f"Feature drift of `{model}`: the latest `drift_window_hours` (EV_DRIFT_WINDOW_HOURS) of "
            f"ml/{family.feature_set} against the rows its champion was trained on, and the requests' distinct "
            "feature rows as their own population against their own reference; each reference resampled to its "
            "window's mix of hours of the week (like with like: the daily rhythm is not drift). Evidently, methods pinned: Wasserstein (numerical) and "
            "Jensen-Shannon (categorical, binary); at most `drift_sample_rows` rows each side. The HTML report "
            f"is under `<data root>/monitoring/drift/{model}/` (`latest.html`)."),
    )
    def drift(context: dg.AssetExecutionContext, ev_config: EvConfig,
              model_registry: ModelRegistry) -> dg.MaterializeResult:
        from ev_assets.lib.monitoring import drift as lib

        settings = ev_config.settings()
        limit = settings.drift_share_limit
        reference = reference_model(model_registry.store(), model)
        if reference is None:
            note = f"no registered version of {model} yet: nothing to compare (ml_job trains it)"
            context.log.info(note)
            return dg.MaterializeResult(metadata={"note": note}, check_results=[dg.AssetCheckResult(
                check_name=check, passed=True, severity=dg.AssetCheckSeverity.WARN, metadata={"note": note})
                for check in (NO_DRIFT, REQUESTS_NO_DRIFT)])
        found = drift_inputs(settings, family, model, reference)
        columns, notes = found["columns"], found["notes"]
        options = dict(time_column=family.time_column, max_rows=settings.drift_sample_rows, seed=DRIFT_SEED,
                       categorical=CATEGORICAL_FEATURES, share_limit=limit,
                       numerical=[c for c in columns if c not in CATEGORICAL_FEATURES])
        summary = lib.report(found["reference"], found["current"], columns, name=model,
                             folder=settings.drift_dir / model, keep_html=settings.drift_reports_kept, **options)
        requests = _request_drift(found, model, settings, options)
        html, latest = Path(summary.html_path), Path(summary.html_path).with_name("latest.html")
        drifted = ", ".join(summary.drifted_columns) or "none"
        top = summary.table().head(15)
        metadata = {
            "share_drifted": float(summary.share_drifted),
            "share_limit": float(limit),
            "drifted": f"{summary.n_drifted} of {summary.n_columns}",
            "drifted_columns": drifted,
            "report": dg.MetadataValue.path(str(html)),
            "report_url": dg.MetadataValue.url(html.resolve().as_uri()),
            "latest_report": dg.MetadataValue.path(str(latest)),
            "columns": dg.MetadataValue.md(top.to_markdown(floatfmt=".4g")),
            "summary": dg.MetadataValue.json(json.loads(json.dumps(summary.to_dict(), default=str))),
            "reference_rows": summary.reference_rows,
            "current_rows": summary.current_rows,
            "window_from": summary.window_from or "",
            "window_to": summary.window_to or "",
            **notes,
        }
        passed = summary.share_drifted <= limit
        context.log.info(f"{model}: {summary.n_drifted} of {summary.n_columns} features drifted "
                         f"(share {summary.share_drifted:.2f}, limit {limit:g}); report {html}")
        check = dg.AssetCheckResult(check_name=NO_DRIFT, passed=passed, severity=dg.AssetCheckSeverity.WARN, metadata={
            "share_drifted": float(summary.share_drifted), "share_limit": float(limit), "drifted_columns": drifted,
            "reference_version": str(reference["version"]), "report": dg.MetadataValue.path(str(html))})
        metadata["requests"] = requests["note"]
        request_check = dg.AssetCheckResult(check_name=REQUESTS_NO_DRIFT, passed=requests["passed"],
                                            severity=dg.AssetCheckSeverity.WARN, metadata=requests["metadata"])
        return dg.MaterializeResult(metadata=metadata, check_results=[check, request_check])

    return drift


def _request_drift(found: dict, model: str, settings: Settings, options: dict) -> dict:
    """The requests' distinct feature rows against their own reference (a report under `drift/<model>/requests/`),
    when there are at least MIN_REQUEST_ROWS of them."""
    from ev_assets.lib.monitoring import drift as lib

    requests = found["requests"]
    if len(requests) < MIN_REQUEST_ROWS:
        note = (f"{len(requests)} distinct requested feature row(s) in the window, fewer than {MIN_REQUEST_ROWS}: "
                "too few to judge the requests' drift")
        return {"passed": True, "note": note, "metadata": {"note": note, "distinct_rows": len(requests)}}
    summary = lib.report(found["request_reference"], requests, found["columns"], name=f"{model} (requests)",
                         folder=settings.drift_dir / model / "requests", keep_html=settings.drift_reports_kept,
                         **options)
    passed = summary.share_drifted <= options["share_limit"]
    note = (f"{summary.n_drifted} of {summary.n_columns} features of {len(requests)} distinct requested rows drifted "
            f"from the training rows of the stations asked about (share {summary.share_drifted:.2f})")
    return {"passed": passed, "note": note, "metadata": {
        "note": note, "distinct_rows": len(requests), "share_drifted": float(summary.share_drifted),
        "share_limit": float(options["share_limit"]), "drifted_columns": ", ".join(summary.drifted_columns) or "none",
        "report": dg.MetadataValue.path(summary.html_path)}}


drift_assets = [drift_asset(model) for model in MONITORED]


# --- live error --------------------------------------------------------------------------------------------------
@dg.asset(
    key=LIVE_ERROR,
    group_name="monitoring",
    deps=[PREDICTION_LOG, *(dg.AssetKey(["ml", f.feature_set]) for f in MONITORED_FAMILIES)],
    kinds={"pandas"},
    check_specs=[dg.AssetCheckSpec(LIVE_LIMIT, asset=LIVE_ERROR, description=(
        "WARN (non-blocking): fails when a model's Brier score on its latest window of matched predictions passes "
        "EV_LIVE_ERROR_RATIO_LIMIT (1.0) x persistence's Brier on the same predictions + EV_LIVE_ERROR_SLACK (0.01); "
        "EV_LIVE_BRIER_LIMIT (0.25) when persistence's is unknown. Passes with a note while no prediction has its "
        "outcome yet. The retraining sensor `retrain_on_drift` watches it."))],
)
def live_error(context: dg.AssetExecutionContext, ev_config: EvConfig) -> dg.MaterializeResult:
    """Live error of the availability forecasts: every logged prediction joined to its outcome once a later poll
    shows it (whether the station had a free charging point at the poll whose interval holds `target_at`, from the
    station-time feature set), and the Brier score per model and window of `drift_window_hours` by target time.
    Unmatched predictions (outcome not polled yet) are counted, not scored. Summary under
    `<data root>/monitoring/live_error/latest.json`."""
    from ev_assets.lib.monitoring import live

    settings = ev_config.settings()
    limit = settings.live_brier_limit
    predictions = live.availability_predictions(read_log(settings))
    outcome_frames = []
    for family in MONITORED_FAMILIES:
        frames = read_feature_set(settings, family)
        if "features" in frames and len(frames["features"]):
            outcome_frames.append(live.outcomes_from_features(frames["features"]))
    outcomes = pd.concat(outcome_frames, ignore_index=True) if outcome_frames else \
        pd.DataFrame(columns=["station_id", "polled_at", "any_available"])
    table = live.live_error(predictions, outcomes, settings.poll_interval_minutes,
                            window=pd.Timedelta(hours=settings.drift_window_hours))
    latest = live.latest_scored(table)
    path = _write_json(settings.live_error_dir, {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "brier_limit": limit,
        "latest": latest, "windows": json.loads(table.to_json(orient="records", date_format="iso"))})

    limits = {m: live.over_limit(r, settings.live_error_ratio_limit, settings.live_error_slack, limit)
              for m, r in latest.items()}
    over = {m: r for m, r in latest.items() if limits[m][0]}
    matched, total = int(table["matched"].sum()) if len(table) else 0, len(predictions)
    if not latest:
        note = (f"nothing to score yet: {total} availability prediction(s) logged, none with its outcome polled"
                if total else "nothing to score yet: no availability prediction logged")
    else:
        note = "; ".join(f"{m}: Brier {r['brier']:.4f} {'>' if m in over else '<='} {limits[m][1]:.4f} "
                         f"({limits[m][2]}) over {r['matched']} matched prediction(s) ({r['window_start']} ..)"
                         for m, r in latest.items())
    context.log.info(note)
    metadata = {
        "predictions": total,
        "matched": matched,
        "unmatched": total - matched,
        "brier_limit": float(limit),
        "ratio_limit": float(settings.live_error_ratio_limit),
        "latest_brier": dg.MetadataValue.json({m: r["brier"] for m, r in latest.items()}),
        "latest_persistence_brier": dg.MetadataValue.json({m: r["persistence_brier"] for m, r in latest.items()}),
        "windows": dg.MetadataValue.md(table.to_markdown(index=False, floatfmt=".4g") if len(table) else "no predictions"),
        "summary": dg.MetadataValue.path(str(path)),
        "note": note,
    }
    check = dg.AssetCheckResult(check_name=LIVE_LIMIT, passed=not over, severity=dg.AssetCheckSeverity.WARN,
                                metadata={"note": note, "brier_limit": float(limit),
                                          "limits": dg.MetadataValue.json({m: v[1] for m, v in limits.items()}),
                                          "models_over_limit": ", ".join(over) or "none",
                                          "latest_brier": dg.MetadataValue.json({m: r["brier"] for m, r in latest.items()})})
    return dg.MaterializeResult(metadata=metadata, check_results=[check])


def _write_json(folder: Path, payload: dict) -> Path:
    """`<stamp>.json` and `latest.json` (replaced atomically) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    text = json.dumps(payload, indent=1, default=str)
    (folder / f"{stamp}.json").write_text(text)
    partial = folder / ".latest.json.partial"
    partial.write_text(text)
    os.replace(partial, folder / "latest.json")
    return folder / f"{stamp}.json"


monitoring_assets = [prediction_log, *drift_assets, live_error]
