"""The operator dashboard (Streamlit): network status, stations, reliability, energy and models, on the read-only
marts snapshot and the MLflow registry of one data root. `python -m ev_assets.dashboard` serves it."""
