"""`python -m ev_assets.dashboard [streamlit options]`: serve the dashboard on settings.serve_host and
settings.dashboard_port (EV_SERVE_HOST, EV_DASHBOARD_PORT), headless, without usage statistics, offline.

Further arguments go to `streamlit run` (e.g. `--server.port 8600` wins over the setting)."""

from __future__ import annotations

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


def main(argv: list[str] | None = None) -> None:
    from streamlit.web import cli

    settings = Settings.from_env()
    sys.argv = command(settings, list(sys.argv[1:] if argv is None else argv))
    print(f"EV dashboard on {settings.dashboard_url} (data root {settings.data_dir})",
          flush=True)
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
