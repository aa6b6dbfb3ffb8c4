"""All configuration of ev-assets, read from the environment in this one place.

Every other module takes a `Settings` object (or one of its fields); nothing else calls `os.environ`.
`Settings.from_env()` is only called at run time (from resources), never at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Mapping

from ev_assets.lib.settings import parse
from ev_assets.lib.settings.parse import SettingsError
from ev_assets.lib.vocabulary import POLL_GRID_MINUTES

SOURCE_MODES = ("simulated", "replay", "live")
WAREHOUSE_ENGINES = ("duckdb", "spark")  # the dbt targets of dbt_project/profiles.yml
EXECUTORS = ("default", "celery")  # default: in one process or a process per step, as the run's config says
SOURCES = ("chargecloud", "openchargemap", "osm", "sessions", "vehicle_telemetry")

# The 38 city slugs of the chargecloud POI endpoint that the real recordings in shared/data hold.
CHARGECLOUD_CITIES = (
    "koeln", "dortmund", "bonn", "muenster", "kiel", "chemnitz", "krefeld", "leverkusen", "heidelberg",
    "solingen", "ingolstadt", "pforzheim", "goettingen", "erlangen", "tuebingen", "bayreuth", "bocholt",
    "dormagen", "rastatt", "hof", "weinheim", "bruchsal", "nettetal", "ansbach", "schwabach", "ettlingen",
    "crailsheim", "deggendorf", "forchheim", "bretten", "buehl", "zirndorf", "roth", "calw",
    "herzogenaurach", "wertheim", "kitzingen", "lichtenfels",
)

# OpenStreetMap tags whose features count as points of interest near a charging station.
DEFAULT_OSM_TAGS: dict[str, list[str] | bool] = {
    "amenity": ["fast_food", "restaurant", "cafe", "fuel", "parking", "charging_station"],
    "shop": ["supermarket", "mall", "doityourself", "hardware"],
    "highway": ["services"],
}


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class SimulationSettings:
    seed: int = 42
    cities: tuple[str, ...] = ("koeln", "bonn", "bayreuth")
    stations_per_city: int = 12
    start: date = date(2022, 1, 10)
    days: int = 7  # a week: enough history for the demo to train every model
    demand_factor: float = 1.0  # scales every station's arrival rate (a demand shift, to show drift)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    source: str = "simulated"
    source_overrides: Mapping[str, str] = field(default_factory=dict)
    replay_dir: Path | None = None
    sessions_inbox: Path | None = None  # live mode of the session sources: a landing folder of exported files
    telemetry_inbox: Path | None = None  # live mode of vehicle_telemetry: a landing folder of exported CSV / Parquet
    telemetry_gap_minutes: int = 240  # no reading for longer than this is a gap: deltas and targets do not span it
    telemetry_horizon_minutes: int = 15  # how far ahead the vehicle telemetry targets look
    cities: tuple[str, ...] = CHARGECLOUD_CITIES
    poll_interval_minutes: int = POLL_GRID_MINUTES  # polled every grid slot by default
    chargecloud_url: str = "https://new-poi.chargecloud.de"
    ocm_url: str = "https://api.openchargemap.io/v3/poi/"
    ocm_api_key: str | None = field(default=None, repr=False)  # never logged
    ocm_country: str = "DE"
    ocm_max_results: int = 5000
    osm_tags: Mapping[str, list[str] | bool] = field(default_factory=lambda: dict(DEFAULT_OSM_TAGS))
    poi_radius_m: int = 500  # POIs within this distance of a station count as near it
    http_timeout_s: float = 20.0
    http_retries: int = 4
    http_backoff_s: float = 1.0
    duckdb_memory_limit: str = "4GB"
    warehouse_engine: str = "duckdb"  # the dbt project's engine: duckdb (embedded) or spark (`make warehouse-spark`)
    lake_url: str | None = None  # where the raw tables live as Parquet (EV_LAKE_URL); unset: <data root>/lake
    raw_url: str | None = None  # where the raw pulls are kept, gzip by hash (EV_RAW_URL); unset: <data root>/raw
    s3_endpoint_url: str | None = None  # an S3-compatible endpoint other than AWS for an s3:// lake
    # --- beyond one machine -----------------------------------------------------------------------------------
    executor: str = "default"  # EV_EXECUTOR=celery: a run's steps go to Celery workers
    celery_broker_url: str = "redis://127.0.0.1:6379/0"  # the broker (and result backend) of the Celery workers
    mlflow_store_uri: str | None = None  # MLflow's backend store, e.g. postgresql://...; unset: SQLite under the data root
    simulation: SimulationSettings = field(default_factory=SimulationSettings)
    # --- the service (`make serve`) and monitoring -----------------------------------------------
    serve_host: str = "127.0.0.1"
    serve_port: int = 8000
    cors_origins: tuple[str, ...] = ()  # browser origins the service answers; none given: the dashboard's
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost")  # Host headers the service answers (+ serve_host)
    max_body_bytes: int = 1_000_000  # a request body over this is refused (413) before it is read whole
    admin_token: str | None = field(default=None, repr=False)  # X-Admin-Token of the admin routes; never logged
    model_reload_s: float = 10.0  # how often the service looks for a new champion
    predlog_fsync: bool = False  # fsync each logged prediction (survives power loss, not only a crash; slower)
    backtest_origins: int = 4  # rolling-origin backtest folds per model family (0: none)
    drift_window_hours: int = 24  # the current window of a drift report: the latest hours of features / requests
    drift_sample_rows: int = 5000  # windows and references are sampled to at most this many rows
    drift_share_limit: float = 0.5  # the drift check fails when more than this share of the features drifted
    drift_reports_kept: int = 14  # stamped HTML drift reports kept per model (JSON summaries are all kept)
    live_brier_limit: float = 0.25  # the live-error limit when persistence's live Brier is unknown
    # the live-error check fails when the model's live Brier passes this multiple of persistence's on the same rows
    live_error_ratio_limit: float = 1.0
    live_error_slack: float = 0.01  # Brier points added to that limit (an unchanged window gives persistence 0)
    # --- the champion gate ----------------------------------------------------------------------------
    gate_margin: float = 0.0  # share of the rival's loss the candidate must be better by (0: the CI excludes zero)
    gate_confidence: float = 0.95  # of the paired bootstrap interval of the loss difference
    gate_resamples: int = 1000  # bootstrap resamples of the held-out rows (by cluster: station-day, user)
    retrain_cooldown_minutes: int = 360  # after a retraining request, further breaches wait this long
    dashboard_port: int = 8501  # `make dashboard`, on serve_host
    dashboard_refresh_s: float = 5.0  # how often Network now and Station redraw their live part (at least 1 s)
    # the tools the Makefile serves on 127.0.0.1: `make ui`, `make docs` (the dbt docs site), `make mlflow`
    dagster_ui_port: int = 3000
    docs_port: int = 8080
    mlflow_port: int = 5000
    map_tiles: bool = False  # base-map tiles on the dashboard's map: they are fetched online, so off by default
    # --- the live path (`make live`) --------------------------------------------------------------
    nats_url: str | None = None  # a NATS JetStream server to use; unset: `make live` starts its own under live_dir
    live_speed: float = 60.0  # simulated live feed: simulated seconds per wall-clock second (1 = real time)
    live_stale_polls: int = 2  # live data older than this many poll intervals is stale (checks, /health, API)

    def __post_init__(self) -> None:
        if not self.cors_origins:  # the dashboard's origins, on the port it is served on
            origins = tuple(f"http://{host}:{self.dashboard_port}" for host in ("127.0.0.1", "localhost"))
            object.__setattr__(self, "cors_origins", origins)

    # --- where things are served -----------------------------------------------------------------
    @property
    def service_url(self) -> str:
        """The prediction and KPI service (`make serve`); its interactive docs at `/docs`."""
        return f"http://{self.serve_host}:{self.serve_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.serve_host}:{self.dashboard_port}"

    @property
    def dagster_ui_url(self) -> str:
        return f"http://127.0.0.1:{self.dagster_ui_port}"

    @property
    def docs_url(self) -> str:
        """The dbt docs site `make docs` serves (the Dagster UI links here: browsers refuse its file:// links)."""
        return f"http://127.0.0.1:{self.docs_port}/"

    @property
    def mlflow_url(self) -> str:
        """The MLflow UI `make mlflow` serves on the data root's registry."""
        return f"http://127.0.0.1:{self.mlflow_port}"

    # --- derived paths under the one data root -------------------------------------------------
    @property
    def docs_site_path(self) -> Path:
        """The dbt docs site as one self-contained HTML file (`make docs` serves it at `docs_url`)."""
        return self.data_dir / "docs" / "index.html"

    @property
    def raw_dir(self) -> Path:
        """The raw store's folder when it is local (`raw_location` names it in any case)."""
        return Path(self.raw_url) if self.raw_url and "://" not in self.raw_url else self.data_dir / "raw"

    @property
    def raw_location(self) -> str:
        """The raw store's URL: EV_RAW_URL, else the folder `raw/` under the data root."""
        return self.raw_url or str(self.data_dir / "raw")

    @property
    def lake_location(self) -> str:
        """The lake's URL: EV_LAKE_URL, else the folder `lake/` under the data root."""
        return self.lake_url or str(self.data_dir / "lake")

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def dbt_parse_cache(self) -> Path:
        """dbt's parsed project for this data root (`partial_parse.msgpack`), reused by the next dbt run."""
        return self.data_dir / "dbt" / "partial_parse.msgpack"

    @property
    def serving_dir(self) -> Path:
        """What the service reads and writes: `snapshots/` of the marts, the `predictions/` log."""
        return self.data_dir / "serving"

    @property
    def snapshot_dir(self) -> Path:
        return self.serving_dir / "snapshots"

    @property
    def prediction_log_dir(self) -> Path:
        return self.serving_dir / "predictions"

    @property
    def mlflow_dir(self) -> Path:
        """The model registry: `mlflow.db` and the run `artifacts/` (`ev_assets.lib.ml.registry.Registry`)."""
        return self.data_dir / "mlflow"

    @property
    def feature_sets_dir(self) -> Path:
        """One folder of Parquet files per feature set (`<feature set>/<frame>.parquet`), as the ML job writes them."""
        return self.data_dir / "ml" / "features"

    @property
    def onnx_dir(self) -> Path:
        """The ONNX exports of the champions that run on the edge (`<model>.onnx`)."""
        return self.data_dir / "ml" / "onnx"

    @property
    def monitoring_dir(self) -> Path:
        """Drift reports (HTML) and live-error summaries."""
        return self.data_dir / "monitoring"

    @property
    def drift_dir(self) -> Path:
        """One folder of drift reports per monitored model (`<model>/latest.html`, `latest.json`)."""
        return self.monitoring_dir / "drift"

    @property
    def live_error_dir(self) -> Path:
        """The live error of the served forecasts against the polls that followed (`latest.json`)."""
        return self.monitoring_dir / "live_error"

    @property
    def live_dir(self) -> Path:
        """The live path's landing store (`landed.sqlite`) and the broker's store (`nats/`)."""
        return self.data_dir / "live"

    @property
    def trusted_hosts(self) -> tuple[str, ...]:
        """The Host names the service answers: `allowed_hosts` and the host it is bound to."""
        return tuple(dict.fromkeys((*self.allowed_hosts, self.serve_host.lower())))

    @property
    def serves_loopback_only(self) -> bool:
        """Whether the service is bound to loopback only (beyond it, the admin routes need `admin_token`)."""
        return self.serve_host.lower() in LOOPBACK_HOSTS

    @property
    def live_stale_after_s(self) -> float:
        return self.live_stale_polls * self.poll_interval_minutes * 60.0

    def mode(self, source: str) -> str:
        """The mode of one source: its own override (EV_SOURCE_<NAME>) or the global EV_SOURCE."""
        if source not in SOURCES:
            raise SettingsError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
        return self.source_overrides.get(source, self.source)

    def replay_folder(self, source: str) -> Path:
        """Where recorded responses of `source` are read in replay mode.

        `EV_REPLAY_DIR/<source>/` when that folder exists, else `EV_REPLAY_DIR` itself, so a plain folder of
        recorded chargecloud polls works as is.
        """
        if self.replay_dir is None:
            raise SettingsError(
                f"{source} is in replay mode but EV_REPLAY_DIR is not set: point it at a folder of recorded responses"
            )
        if not self.replay_dir.is_dir():
            raise SettingsError(f"EV_REPLAY_DIR={self.replay_dir} is not a folder")
        sub = self.replay_dir / source
        return sub if sub.is_dir() else self.replay_dir

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        get = lambda name: (env.get(name) or "").strip() or None  # noqa: E731 - empty means unset

        source = (get("EV_SOURCE") or "simulated").lower()
        _check_mode("EV_SOURCE", source)
        overrides = {}
        for name in SOURCES:
            value = get(f"EV_SOURCE_{name.upper()}")
            if value:
                _check_mode(f"EV_SOURCE_{name.upper()}", value.lower())
                overrides[name] = value.lower()

        defaults = cls()
        sim_defaults = SimulationSettings()
        simulation = SimulationSettings(
            seed=parse.integer(get, "EV_SIM_SEED", sim_defaults.seed),
            cities=parse.csv(get("EV_SIM_CITIES")) or sim_defaults.cities,
            stations_per_city=parse.integer(get, "EV_SIM_STATIONS_PER_CITY", sim_defaults.stations_per_city, minimum=1),
            start=parse.day(get, "EV_SIM_START", sim_defaults.start),
            days=parse.integer(get, "EV_SIM_DAYS", sim_defaults.days, minimum=1),
            demand_factor=parse.number(get, "EV_SIM_DEMAND_FACTOR", sim_defaults.demand_factor),
        )
        replay_dir = get("EV_REPLAY_DIR")
        engine = (get("EV_WAREHOUSE_ENGINE") or defaults.warehouse_engine).lower()
        if engine not in WAREHOUSE_ENGINES:
            raise SettingsError(f"EV_WAREHOUSE_ENGINE={engine!r} is not an engine; use one of {', '.join(WAREHOUSE_ENGINES)}")
        return cls(
            data_dir=Path(get("EV_DATA_DIR") or "data").expanduser().resolve(),
            source=source,
            source_overrides=overrides,
            replay_dir=Path(replay_dir).expanduser().resolve() if replay_dir else None,
            sessions_inbox=Path(inbox).expanduser().resolve() if (inbox := get("EV_SESSIONS_INBOX")) else None,
            telemetry_inbox=Path(t_inbox).expanduser().resolve() if (t_inbox := get("EV_TELEMETRY_INBOX")) else None,
            telemetry_gap_minutes=parse.integer(get, "EV_TELEMETRY_GAP_MINUTES", defaults.telemetry_gap_minutes, minimum=1),
            telemetry_horizon_minutes=parse.integer(
                get, "EV_TELEMETRY_HORIZON_MINUTES", defaults.telemetry_horizon_minutes, minimum=1
            ),
            cities=parse.csv(get("EV_CITIES")) or defaults.cities,
            poll_interval_minutes=parse.integer(get, "EV_POLL_INTERVAL_MINUTES", defaults.poll_interval_minutes, minimum=1),
            chargecloud_url=(get("EV_CHARGECLOUD_URL") or defaults.chargecloud_url).rstrip("/"),
            ocm_url=get("EV_OCM_URL") or defaults.ocm_url,
            ocm_api_key=get("OPENCHARGEMAP_API_KEY"),
            ocm_country=(get("EV_OCM_COUNTRY") or defaults.ocm_country).upper(),
            ocm_max_results=parse.integer(get, "EV_OCM_MAX_RESULTS", defaults.ocm_max_results, minimum=1),
            osm_tags=parse.osm_tags(get("EV_OSM_TAGS")) or dict(DEFAULT_OSM_TAGS),
            poi_radius_m=parse.integer(get, "EV_POI_RADIUS_M", defaults.poi_radius_m, minimum=1),
            http_timeout_s=parse.number(get, "EV_HTTP_TIMEOUT_S", defaults.http_timeout_s),
            http_retries=parse.integer(get, "EV_HTTP_RETRIES", defaults.http_retries, minimum=0),
            http_backoff_s=parse.number(get, "EV_HTTP_BACKOFF_S", defaults.http_backoff_s),
            duckdb_memory_limit=get("EV_DUCKDB_MEMORY_LIMIT") or defaults.duckdb_memory_limit,
            warehouse_engine=engine,
            lake_url=parse.url(get, "EV_LAKE_URL"),
            raw_url=parse.url(get, "EV_RAW_URL"),
            s3_endpoint_url=get("EV_S3_ENDPOINT_URL"),
            executor=parse.choice(get, "EV_EXECUTOR", EXECUTORS, defaults.executor),
            celery_broker_url=get("EV_CELERY_BROKER_URL") or defaults.celery_broker_url,
            mlflow_store_uri=get("EV_MLFLOW_STORE_URI"),
            simulation=simulation,
            serve_host=get("EV_SERVE_HOST") or defaults.serve_host,
            serve_port=parse.integer(get, "EV_SERVE_PORT", defaults.serve_port, minimum=1),
            cors_origins=tuple(o.strip() for o in (get("EV_CORS_ORIGINS") or "").split(",") if o.strip()),
            allowed_hosts=parse.csv(get("EV_ALLOWED_HOSTS")) or defaults.allowed_hosts,
            max_body_bytes=parse.integer(get, "EV_MAX_BODY_BYTES", defaults.max_body_bytes, minimum=1),
            admin_token=get("EV_ADMIN_TOKEN"),
            model_reload_s=parse.number(get, "EV_MODEL_RELOAD_S", defaults.model_reload_s),
            predlog_fsync=(get("EV_PREDLOG_FSYNC") or "").lower() in ("1", "true", "yes"),
            backtest_origins=parse.integer(get, "EV_BACKTEST_ORIGINS", defaults.backtest_origins, minimum=0),
            drift_window_hours=parse.integer(get, "EV_DRIFT_WINDOW_HOURS", defaults.drift_window_hours, minimum=1),
            drift_sample_rows=parse.integer(get, "EV_DRIFT_SAMPLE_ROWS", defaults.drift_sample_rows, minimum=100),
            drift_share_limit=parse.number(get, "EV_DRIFT_SHARE_LIMIT", defaults.drift_share_limit),
            drift_reports_kept=parse.integer(get, "EV_DRIFT_REPORTS_KEPT", defaults.drift_reports_kept, minimum=1),
            live_brier_limit=parse.number(get, "EV_LIVE_BRIER_LIMIT", defaults.live_brier_limit),
            live_error_ratio_limit=parse.number(get, "EV_LIVE_ERROR_RATIO_LIMIT", defaults.live_error_ratio_limit),
            live_error_slack=parse.number(get, "EV_LIVE_ERROR_SLACK", defaults.live_error_slack),
            gate_margin=parse.number(get, "EV_GATE_MARGIN", defaults.gate_margin),
            gate_confidence=parse.number(get, "EV_GATE_CONFIDENCE", defaults.gate_confidence),
            gate_resamples=parse.integer(get, "EV_GATE_RESAMPLES", defaults.gate_resamples, minimum=100),
            retrain_cooldown_minutes=parse.integer(
                get, "EV_RETRAIN_COOLDOWN_MINUTES", defaults.retrain_cooldown_minutes, minimum=0
            ),
            dashboard_port=parse.integer(get, "EV_DASHBOARD_PORT", defaults.dashboard_port, minimum=1),
            dashboard_refresh_s=max(parse.number(get, "EV_DASHBOARD_REFRESH_S", defaults.dashboard_refresh_s), 1.0),
            map_tiles=(get("EV_MAP_TILES") or "").lower() in ("1", "true", "yes"),
            nats_url=get("EV_NATS_URL"),
            live_speed=parse.number(get, "EV_LIVE_SPEED", defaults.live_speed),
            live_stale_polls=parse.integer(get, "EV_LIVE_STALE_POLLS", defaults.live_stale_polls, minimum=1),
        )


def _check_mode(name: str, value: str) -> None:
    if value not in SOURCE_MODES:
        raise SettingsError(f"{name}={value!r} is not a source mode; use one of {', '.join(SOURCE_MODES)}")
