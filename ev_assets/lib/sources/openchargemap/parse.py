"""Open Charge Map parsing: a pull flattened into `ocm_stations`, `ocm_connections` and `quarantine` rows.

Parsing never fails on odd records: a POI without an ID or without coordinates goes to quarantine with the
reason, IDs missing from the reference data (OCM adds operators faster than old reference dumps know them)
stay as IDs with NULL names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

from ev_assets.lib import tables
from ev_assets.lib.values import finite_float, integer, record_json
from ev_assets.lib.sources.openchargemap.fetch import FAILED_FILES, SOURCE

# Reference lists used to decode the compact POI answer: POI field -> reference list.
REFERENCE_LISTS = ("Operators", "UsageTypes", "StatusTypes", "ConnectionTypes", "CurrentTypes", "Countries")


@dataclass
class OcmTables:
    """The parsed pull: rows for `ocm_stations`, `ocm_connections` and `quarantine` (columns as in TABLES)."""

    stations: pd.DataFrame
    connections: pd.DataFrame
    quarantine: pd.DataFrame



def parse_ocm(pull: dict, raw_file: str = "") -> OcmTables:
    """Flatten a pull into station, connection and quarantine rows (one `file` row per entry of the pull's
    `failed_files`); see the module docstring for the rules."""
    lookup = _Lookup(pull.get("reference") or {})
    stations, connections, quarantine = [], [], []
    for name, reason in (pull.get(FAILED_FILES) or {}).items():  # recorded files the pull could not read
        quarantine.append(_quarantine_row("file", {"file": name}, reason, raw_file, record_id=name))
    seen: set[int] = set()
    for poi in pull.get("poi") or []:
        problem, ocm_id, lat, lon = _check_poi(poi, seen)
        if problem:
            quarantine.append(_quarantine_row("station", poi, problem, raw_file))
            continue
        seen.add(ocm_id)
        conns = []
        for conn in poi.get("Connections") or []:
            if isinstance(conn, dict):
                conns.append(_connection_row(ocm_id, conn, lookup))
            else:
                quarantine.append(_quarantine_row("connection", conn, "connection is not an object", raw_file, ocm_id))
        connections.extend(conns)
        stations.append(_station_row(poi, ocm_id, lat, lon, conns, lookup, raw_file))
    return OcmTables(
        stations=tables.frame("ocm_stations", stations),
        connections=tables.frame("ocm_connections", connections),
        quarantine=tables.frame("quarantine", quarantine),
    )


def _check_poi(poi: Any, seen: set[int]) -> tuple[str | None, int | None, float | None, float | None]:
    """(reason to quarantine or None, ID, latitude, longitude)."""
    if not isinstance(poi, dict):
        return "POI is not an object", None, None, None
    ocm_id = integer(poi.get("ID"))
    if ocm_id is None:
        return "missing or non-integer ID", None, None, None
    if ocm_id in seen:
        return "duplicate ID in the same pull", None, None, None
    address = poi.get("AddressInfo") if isinstance(poi.get("AddressInfo"), dict) else {}
    lat, lon = finite_float(address.get("Latitude")), finite_float(address.get("Longitude"))
    if lat is None or lon is None:
        return "missing or non-numeric coordinates", None, None, None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return f"coordinates out of range ({lat}, {lon})", None, None, None
    return None, ocm_id, lat, lon


def _station_row(poi: dict, ocm_id: int, lat: float, lon: float, conns: list[dict], lookup: "_Lookup",
                 raw_file: str) -> dict:
    address = poi.get("AddressInfo") or {}
    operator_id, usage_id, status_id = integer(poi.get("OperatorID")), integer(poi.get("UsageTypeID")), integer(poi.get("StatusTypeID"))
    powers = [c["power_kw"] for c in conns if c["power_kw"] is not None]
    lines = [address.get("AddressLine1"), address.get("AddressLine2")]
    return {
        "ocm_id": ocm_id,
        "uuid": poi.get("UUID"),
        "title": address.get("Title"),
        "address": ", ".join(str(x) for x in lines if x) or None,
        "town": address.get("Town"),
        "state": address.get("StateOrProvince"),
        "postcode": address.get("Postcode"),
        "country_iso": lookup.country_iso(address),
        "latitude": lat,
        "longitude": lon,
        "operator_id": operator_id,
        "operator_name": lookup.title("Operators", operator_id, poi.get("OperatorInfo")),
        "usage_type_id": usage_id,
        "usage_type": lookup.title("UsageTypes", usage_id, poi.get("UsageType")),
        "status_type_id": status_id,
        "status_type": lookup.title("StatusTypes", status_id, poi.get("StatusType")),
        "number_of_points": integer(poi.get("NumberOfPoints")),
        "max_power_kw": max(powers) if powers else None,
        "connection_count": len(conns),
        "date_last_verified": poi.get("DateLastVerified"),
        "date_created": poi.get("DateCreated"),
        "raw_file": raw_file,
    }


def _connection_row(ocm_id: int, conn: dict, lookup: "_Lookup") -> dict:
    type_id, current_id = integer(conn.get("ConnectionTypeID")), integer(conn.get("CurrentTypeID"))
    return {
        "ocm_id": ocm_id,
        "connection_id": integer(conn.get("ID")),
        "connection_type_id": type_id,
        "connection_type": lookup.title("ConnectionTypes", type_id, conn.get("ConnectionType")),
        "current_type_id": current_id,
        "current_type": lookup.title("CurrentTypes", current_id, conn.get("CurrentType")),
        "level_id": integer(conn.get("LevelID")),
        "status_type_id": integer(conn.get("StatusTypeID")),
        "power_kw": finite_float(conn.get("PowerKW")),
        "quantity": integer(conn.get("Quantity")),
    }


def _quarantine_row(level: str, record: Any, reason: str, raw_file: str, record_id: Any = None) -> dict:
    if record_id is None and isinstance(record, dict):
        record_id = record.get("ID")
    record_id = "" if record_id is None else str(record_id)
    return tables.quarantine_row(SOURCE, record_id, reason, record_json(record), raw_file, level=level)


class _Lookup:
    """ID -> title maps built from the reference data; unknown IDs decode to None rather than failing."""

    def __init__(self, reference: Mapping[str, Any]):
        self.titles = {name: _id_map(reference.get(name), "Title") for name in REFERENCE_LISTS}
        self.iso = _id_map(reference.get("Countries"), "ISOCode")

    def title(self, name: str, item_id: int | None, embedded: Any = None) -> str | None:
        """The title of `item_id`; falls back to the object a verbose (non-compact) answer embeds."""
        if item_id is not None and item_id in self.titles[name]:
            return self.titles[name][item_id]
        return embedded.get("Title") if isinstance(embedded, dict) else None

    def country_iso(self, address: Mapping[str, Any]) -> str | None:
        country_id = integer(address.get("CountryID"))
        if country_id is not None and country_id in self.iso:
            return self.iso[country_id]
        embedded = address.get("Country")
        return embedded.get("ISOCode") if isinstance(embedded, dict) else None


def _id_map(items: Any, field: str) -> dict[int, Any]:
    if not isinstance(items, list):
        return {}
    return {integer(i.get("ID")): i.get(field) for i in items if isinstance(i, dict) and integer(i.get("ID")) is not None}
