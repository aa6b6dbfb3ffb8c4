"""The data sources, one package each: chargecloud, openchargemap, osm, sessions, telemetry."""
