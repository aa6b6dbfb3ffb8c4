"""`python -m ev_assets.api` (`make serve`): the service on EV_SERVE_HOST:EV_SERVE_PORT (default 127.0.0.1:8000),
one uvicorn worker, over the data root EV_DATA_DIR."""

from __future__ import annotations

import logging
import sys


def main() -> None:
    import uvicorn

    from ev_assets.api.app import create_app
    from ev_assets.lib.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        sys.exit(f"ev-assets service: {exc}")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("ev_assets.api", "ev_assets.lib.ml.champions"):  # champion loads and swaps, not every request
        logging.getLogger(name).setLevel(logging.INFO)
    app = create_app(settings)
    base = settings.service_url
    print(f"ev-assets service on {base} (data {settings.data_dir}): interactive docs at {base}/docs", flush=True)
    # one worker: the champion store and the prediction log's lock live in this process; no access log (the
    # prediction log records every answer, and a log line per request costs latency)
    uvicorn.run(app, host=settings.serve_host, port=settings.serve_port, workers=1, log_level="warning",
                access_log=False)


if __name__ == "__main__":
    main()
