"""Dagster objects of ev-assets, by domain: each module or folder here with a `defs = dg.Definitions(...)` is a
domain that `ev_assets.definitions` merges (raw pulls and tables in `raw/`, the warehouse in `warehouse/`, jobs and
schedules in `jobs.py`, the shared resources in `resources.py`)."""
