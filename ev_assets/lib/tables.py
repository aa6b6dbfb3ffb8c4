"""The flattened tables that ingestion writes to DuckDB (schema `raw`), with their column types.

This is the contract between the parsers (which return DataFrames with exactly these columns, in this order),
the loader (`lib/warehouse.py`, which creates the tables from these definitions) and the dbt sources.
Names follow the original chargecloud design: status facts `status_chargingpoints` / `status_connectors`,
master data `chargingstations` / `chargingpoints` / `connectors`.

Master data tables hold one row per *version* of an item (`attr_hash` over its attributes) with the first and
last poll it was seen in, so history can be kept as a type-2 slowly changing dimension downstream.
"""

from __future__ import annotations

import pandas as pd

SCHEMA = "raw"

# name -> ordered (column, DuckDB type) pairs
TABLES: dict[str, list[tuple[str, str]]] = {
    # --- chargecloud ------------------------------------------------------------------------------------
    "status_chargingpoints": [
        ("poll_slot", "TIMESTAMPTZ"),  # start of the poll's partition window (UTC); idempotent reloads key on it
        ("poll_time", "TIMESTAMPTZ"),  # the response `timestamp` of the city's answer
        ("city_slug", "VARCHAR"),
        ("station_id", "VARCHAR"),
        ("charging_point_id", "VARCHAR"),  # the EVSE id, e.g. DE*REK*E00025*001
        ("evse_uid", "VARCHAR"),
        ("status", "VARCHAR"),
        ("parkingsensor_status", "VARCHAR"),
    ],
    "status_connectors": [
        ("poll_slot", "TIMESTAMPTZ"),
        ("poll_time", "TIMESTAMPTZ"),
        ("city_slug", "VARCHAR"),
        ("station_id", "VARCHAR"),
        ("charging_point_id", "VARCHAR"),
        ("connector_id", "VARCHAR"),
        ("status", "VARCHAR"),
    ],
    "chargingstations": [
        ("station_id", "VARCHAR"),
        ("city_slug", "VARCHAR"),
        ("name", "VARCHAR"),
        ("address", "VARCHAR"),
        ("city", "VARCHAR"),
        ("postal_code", "VARCHAR"),
        ("country", "VARCHAR"),
        ("latitude", "DOUBLE"),
        ("longitude", "DOUBLE"),
        ("operator_name", "VARCHAR"),
        ("operator_hotline", "VARCHAR"),
        ("owner", "VARCHAR"),
        ("roaming", "BOOLEAN"),
        ("twentyfourseven", "BOOLEAN"),
        ("opening_times", "VARCHAR"),  # JSON text of `opening_times`
        ("directions", "VARCHAR"),
        ("attr_hash", "VARCHAR"),
        ("first_seen_at", "TIMESTAMPTZ"),
        ("last_seen_at", "TIMESTAMPTZ"),
    ],
    "chargingpoints": [
        ("charging_point_id", "VARCHAR"),
        ("evse_uid", "VARCHAR"),
        ("station_id", "VARCHAR"),
        ("physical_reference", "VARCHAR"),
        ("floor_level", "VARCHAR"),
        ("vehicle_type", "VARCHAR"),
        ("capabilities", "VARCHAR"),  # comma-separated
        ("charge_point_position", "VARCHAR"),
        ("charging_station_position", "VARCHAR"),
        ("parking_space_numbers", "VARCHAR"),
        ("public_comment", "VARCHAR"),
        ("roaming", "BOOLEAN"),
        ("attr_hash", "VARCHAR"),
        ("first_seen_at", "TIMESTAMPTZ"),
        ("last_seen_at", "TIMESTAMPTZ"),
    ],
    "connectors": [
        ("connector_id", "VARCHAR"),
        ("charging_point_id", "VARCHAR"),
        ("station_id", "VARCHAR"),
        ("standard", "VARCHAR"),
        ("format", "VARCHAR"),
        ("power_type", "VARCHAR"),
        ("ampere", "DOUBLE"),
        ("voltage", "DOUBLE"),
        ("max_power_kw", "DOUBLE"),
        ("tariff_id", "VARCHAR"),
        ("attr_hash", "VARCHAR"),
        ("first_seen_at", "TIMESTAMPTZ"),
        ("last_seen_at", "TIMESTAMPTZ"),
    ],
    "chargecloud_poll_log": [
        ("poll_slot", "TIMESTAMPTZ"),
        ("city_slug", "VARCHAR"),
        ("poll_time", "TIMESTAMPTZ"),  # NULL when the city failed
        ("ok", "BOOLEAN"),
        ("error", "VARCHAR"),
        ("stations", "INTEGER"),
        ("charging_points", "INTEGER"),
        ("connectors", "INTEGER"),
        ("raw_file", "VARCHAR"),
    ],
    # Records that could not be loaded as they are, with the reason. Nothing is dropped silently.
    "quarantine": [
        # chargecloud | openchargemap | session_reports | hourly_loads | acn_sessions | charging_events |
        # vehicle_telemetry
        ("source", "VARCHAR"),
        ("partition_key", "VARCHAR"),  # poll slot / day / '' for unpartitioned pulls
        ("level", "VARCHAR"),  # response | station | charging_point | connector | row ...
        ("record_id", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("record", "VARCHAR"),  # the offending record as JSON text (or the raw line)
        ("raw_file", "VARCHAR"),
    ],
    # --- Open Charge Map --------------------------------------------------------------------------------
    "ocm_stations": [
        ("ocm_id", "BIGINT"),
        ("uuid", "VARCHAR"),
        ("title", "VARCHAR"),
        ("address", "VARCHAR"),
        ("town", "VARCHAR"),
        ("state", "VARCHAR"),
        ("postcode", "VARCHAR"),
        ("country_iso", "VARCHAR"),
        ("latitude", "DOUBLE"),
        ("longitude", "DOUBLE"),
        ("operator_id", "BIGINT"),
        ("operator_name", "VARCHAR"),  # NULL when the ID is not in the reference data
        ("usage_type_id", "BIGINT"),
        ("usage_type", "VARCHAR"),
        ("status_type_id", "BIGINT"),
        ("status_type", "VARCHAR"),
        ("number_of_points", "INTEGER"),
        ("max_power_kw", "DOUBLE"),
        ("connection_count", "INTEGER"),
        ("date_last_verified", "TIMESTAMPTZ"),
        ("date_created", "TIMESTAMPTZ"),
        ("raw_file", "VARCHAR"),  # the first pull that gave this version of the station
        ("first_pulled_at", "TIMESTAMPTZ"),  # when that pull was stored: the version is valid from then
    ],
    "ocm_connections": [
        ("ocm_id", "BIGINT"),
        ("connection_id", "BIGINT"),
        ("connection_type_id", "BIGINT"),
        ("connection_type", "VARCHAR"),
        ("current_type_id", "BIGINT"),
        ("current_type", "VARCHAR"),
        ("level_id", "BIGINT"),
        ("status_type_id", "BIGINT"),
        ("power_kw", "DOUBLE"),
        ("quantity", "INTEGER"),
    ],
    # --- OpenStreetMap ----------------------------------------------------------------------------------
    "osm_pois": [
        ("poi_id", "VARCHAR"),  # '<element type>/<osm id>', e.g. 'node/123'
        ("area", "VARCHAR"),  # city slug (live, simulated) or replay file stem
        ("category", "VARCHAR"),  # e.g. supermarket, fast_food, charging_station
        ("tag_key", "VARCHAR"),
        ("tag_value", "VARCHAR"),
        ("name", "VARCHAR"),
        ("longitude", "DOUBLE"),  # of the geometry's representative point
        ("latitude", "DOUBLE"),
        ("geometry_wkt", "VARCHAR"),
    ],
    # POIs within a radius of each charging station (geopandas, EPSG:25832); computed by a Python asset before dbt.
    "poi_station_map": [
        ("station_id", "VARCHAR"),
        ("poi_id", "VARCHAR"),
        ("category", "VARCHAR"),
        ("distance_m", "DOUBLE"),
        ("radius_m", "DOUBLE"),
    ],
    # --- session sources (reports, hourly loads, ACN sessions, charging events) ---------------------------
    # Norwegian residential dataset format ("Dataset 1_EV charging reports"); times are local (Europe/Oslo).
    "session_reports": [
        ("session_id", "VARCHAR"),
        ("garage_id", "VARCHAR"),
        ("user_id", "VARCHAR"),
        ("user_type", "VARCHAR"),
        ("shared_id", "VARCHAR"),
        ("plugin_at", "TIMESTAMP"),  # local wall time of the site
        ("plugout_at", "TIMESTAMP"),
        ("energy_kwh", "DOUBLE"),
        ("duration_hours", "DOUBLE"),
        ("timezone", "VARCHAR"),
        ("raw_file", "VARCHAR"),
    ],
    # "Dataset 2_Hourly EV loads - Per user": one row per user, hour and session (NULL session: idle hour).
    "hourly_loads": [
        ("date_from", "TIMESTAMP"),
        ("date_to", "TIMESTAMP"),
        ("user_id", "VARCHAR"),
        ("session_id", "VARCHAR"),
        ("synthetic_3_6kw", "DOUBLE"),
        ("synthetic_7_2kw", "DOUBLE"),
        ("flex_3_6kw", "DOUBLE"),
        ("flex_7_2kw", "DOUBLE"),
        ("raw_file", "VARCHAR"),
    ],
    # Caltech ACN-Data sessions.
    "acn_sessions": [
        ("session_id", "VARCHAR"),
        ("site_id", "VARCHAR"),
        ("cluster_id", "VARCHAR"),
        ("station_id", "VARCHAR"),
        ("space_id", "VARCHAR"),
        ("user_id", "VARCHAR"),
        ("connection_time", "TIMESTAMPTZ"),
        ("disconnect_time", "TIMESTAMPTZ"),
        ("done_charging_time", "TIMESTAMPTZ"),
        ("kwh_delivered", "DOUBLE"),
        ("kwh_requested", "DOUBLE"),
        ("minutes_available", "DOUBLE"),
        ("first_kwh_requested", "DOUBLE"),  # the first of userInputs: what the driver said at plug-in
        ("first_minutes_available", "DOUBLE"),
        ("first_input_at", "TIMESTAMPTZ"),  # its modifiedAt
        ("timezone", "VARCHAR"),
        ("raw_file", "VARCHAR"),
    ],
    # Charging-event logs in the shape of OCPP transaction events.
    "charging_events": [
        ("event_id", "VARCHAR"),
        ("transaction_id", "VARCHAR"),
        ("station_id", "VARCHAR"),
        ("connector_id", "VARCHAR"),
        ("event_type", "VARCHAR"),  # start | progress | complete
        ("event_time", "TIMESTAMPTZ"),
        ("meter_kwh", "DOUBLE"),  # energy delivered since the start of the transaction
        ("power_kw", "DOUBLE"),
        ("cost", "DOUBLE"),  # on complete events, where the log gives it
        ("currency", "VARCHAR"),
        ("raw_file", "VARCHAR"),
    ],
    # --- vehicle telemetry ------------------------------------------------------------------------------
    # One reading of a vehicle (state of charge, plug), irregularly sampled; one row per (vehicle_id, reading_at).
    "vehicle_telemetry": [
        ("vehicle_id", "VARCHAR"),
        ("reading_at", "TIMESTAMPTZ"),
        ("soc_pct", "DOUBLE"),  # state of charge, 0..100 %
        ("plugged_in", "BOOLEAN"),
        ("extra", "VARCHAR"),  # the file's other columns of this row as JSON text (NULL when it has none)
        ("raw_file", "VARCHAR"),
    ],
}

# Master-data tables hold versions: the columns naming one item (each version adds `attr_hash`). A version seen on
# several days is one row, with the first and last time it was seen.
VERSIONED: dict[str, tuple[str, ...]] = {
    "chargingstations": ("station_id",),
    "chargingpoints": ("charging_point_id",),
    "connectors": ("charging_point_id", "connector_id"),  # OCPI connector ids are per EVSE
}


def collapse_versions_sql(name: str, relation: str) -> str:
    """SQL of one row per version of master-data table `name` found in `relation` (rows of its columns, a version
    maybe many times): the first and last time it was seen widened over all of them."""
    ident = [*VERSIONED[name], "attr_hash"]
    attrs = [c if c in ident else f"any_value({c}) AS {c}" for c in columns(name) if c not in ("first_seen_at", "last_seen_at")]
    return (f"SELECT {', '.join(attrs)}, min(first_seen_at) AS first_seen_at, max(last_seen_at) AS last_seen_at "
            f"FROM {relation} GROUP BY {', '.join(ident)}")


def ddl(name: str) -> str:
    columns = ",\n  ".join(f"{col} {typ}" for col, typ in TABLES[name])
    return f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{name} (\n  {columns}\n)"


def columns(name: str) -> list[str]:
    return [col for col, _ in TABLES[name]]


_PANDAS_TYPES = {"BIGINT": "Int64", "INTEGER": "Int32", "DOUBLE": "float64", "BOOLEAN": "boolean"}


def quarantine_row(source: str, record_id: str | None, reason: str, record: str, raw_file: str, *, level: str = "row",
                   partition_key: str = "") -> dict[str, str | None]:
    """One row of `raw.quarantine`: a record `source` could not load as it is, with the reason (the one builder every
    source uses; `record` is the offending record as JSON text or the raw line)."""
    return {"source": source, "partition_key": partition_key, "level": level, "record_id": record_id,
            "reason": reason, "record": record, "raw_file": raw_file}


def frame(name: str, rows=()) -> pd.DataFrame:
    """`rows` (dicts, tuples or a DataFrame) as a DataFrame with exactly the columns of table `name`, in order,
    typed as DuckDB stores them, also when empty.

    Nullable integers keep NULL IDs as <NA> instead of turning columns into floats; TIMESTAMPTZ becomes UTC,
    TIMESTAMP stays naive (local wall time), an unparseable time NaT; text keeps None for NULL.
    """
    data = pd.DataFrame(rows if len(rows) else None, columns=columns(name))
    for col, typ in TABLES[name]:
        if typ == "TIMESTAMPTZ":
            data[col] = pd.to_datetime(data[col], utc=True, format="ISO8601", errors="coerce")
        elif typ == "TIMESTAMP":
            data[col] = pd.to_datetime(data[col])
        elif typ in _PANDAS_TYPES:
            data[col] = data[col].astype(_PANDAS_TYPES[typ])
        else:
            data[col] = data[col].astype(object).where(data[col].notna(), None)
    return data
