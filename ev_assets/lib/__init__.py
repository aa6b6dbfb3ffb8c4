"""Plain Python for ev-assets: clients, parsers, simulator, settings. No Dagster imports here."""
