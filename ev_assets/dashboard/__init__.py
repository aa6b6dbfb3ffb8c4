"""The operator dashboard (Streamlit): network status, stations, reliability, energy and models, on the read-only
marts snapshot and the MLflow registry of one data root. `python -m ev_assets.dashboard` serves it.

`app` is the entry script (the page list and the shared filters of `filters`), `views/` the pages; what they read
is cached in `data` (the settings and the marts snapshot), `live` (the live path's landing store, and the status
now) and `ml` (the champions and the registry overview, loaded in the background)."""
