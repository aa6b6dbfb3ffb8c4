"""The prediction and KPI service: `python -m ev_assets.api` (or `make serve`), app built by `app.create_app`."""
