"""Dagster objects of ev-assets, by domain: raw pulls and tables (`raw/`), the warehouse (`warehouse/`)."""
