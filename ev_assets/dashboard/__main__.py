"""`python -m ev_assets.dashboard [streamlit options]`: serve the dashboard on settings.serve_host and
settings.dashboard_port (EV_SERVE_HOST, EV_DASHBOARD_PORT), headless, without usage statistics, offline.

Further arguments go to `streamlit run` (e.g. `--server.port 8600` wins over the setting)."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

from ev_assets.lib.settings import Settings

APP = Path(__file__).with_name("app.py")


def command(settings: Settings, extra: list[str] | None = None) -> list[str]:
    """The `streamlit run` arguments for these settings."""
    return [
        "streamlit", "run", str(APP),
        "--server.address", settings.serve_host,
        "--server.port", str(settings.dashboard_port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",  # nothing phones home
        "--server.fileWatcherType", "none",  # a served app, not a development session
        "--client.toolbarMode", "viewer",
        "--theme.base", "light",
        *(extra or []),
    ]


# What the pages import, loaded before the server starts: the first visit after a start then runs the page, not
# these imports (seconds on a busy machine). The pages run in this process, so they find them in sys.modules.
# (Not the dashboard's own modules: their Streamlit caches want the server's runtime, which does not exist yet.)
PRELOAD = ("pandas", "duckdb", "pyarrow.parquet", "plotly.express", "plotly.graph_objects", "lightgbm",
           "ev_assets.lib.dashboard.energy", "ev_assets.lib.dashboard.formatting", "ev_assets.lib.dashboard.models",
           "ev_assets.lib.dashboard.network", "ev_assets.lib.dashboard.scope", "ev_assets.lib.dashboard.stations",
           "ev_assets.lib.kpis.energy", "ev_assets.lib.kpis.network", "ev_assets.lib.snapshot",
           "ev_assets.lib.live.store", "ev_assets.lib.ml.champions", "ev_assets.lib.ml.serving")


def warm_up() -> None:
    """Import what the pages import, and draw one tiny figure of each kind they draw: plotly loads its validators
    and templates on the first figure (seconds, ten times a later figure), so a user's first page should not."""
    import importlib

    for module in PRELOAD:
        importlib.import_module(module)
    import pandas as pd
    import plotly.express as px
    import plotly.graph_objects as go

    frame = pd.DataFrame({"x": [0.0, 1.0], "y": [1.0, 2.0], "lat": [50.7, 50.8], "lon": [7.1, 7.2], "c": ["a", "b"],
                          "start": pd.to_datetime(["2022-01-10 08:00", "2022-01-10 09:00"], utc=True),
                          "end": pd.to_datetime(["2022-01-10 09:00", "2022-01-10 10:00"], utc=True)})
    figures = [
        px.scatter_map(frame, lat="lat", lon="lon", color="c"), px.scatter(frame, x="x", y="y", color="c"),
        px.area(frame, x="x", y="y", color="c"), px.bar(frame, x="x", y="y", color="c"),
        px.line(frame, x="x", y="y", color="c"), px.timeline(frame, x_start="start", x_end="end", y="c"),
        px.imshow([[0.0, 1.0], [1.0, 0.0]]), go.Figure().add_bar(x=[0], y=[1]).add_scatter(x=[0], y=[1]),
    ]
    for figure in figures:
        figure.to_json()
    # Streamlit collects garbage after every script run; what was loaded up to here lives as long as the server, so
    # it is moved out of the collector's sight (a full collection over pandas, plotly and LightGBM took ~0.2-0.9 s)
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> None:
    from streamlit.web import cli

    settings = Settings.from_env()
    warm_up()
    sys.argv = command(settings, list(sys.argv[1:] if argv is None else argv))
    print(f"EV dashboard on {settings.dashboard_url} (data root {settings.data_dir})",
          flush=True)
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
