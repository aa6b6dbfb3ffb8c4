"""Simulated chargecloud POI endpoint responses (`https://new-poi.chargecloud.de/<city>`), schema-exact.

Static parts of each station are rendered once per fleet; a poll only fills in the statuses, building fresh
dicts so callers may mutate what they get.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from ev_assets.lib.settings import CHARGECLOUD_CITIES, SimulationSettings

from ._rng import stable_key, uniform
from .fleet import Fleet, build_fleet
from .status import BERLIN, status_at

_OCCUPYING = {"CHARGING", "BLOCKED"}


def chargecloud_poll(sim: SimulationSettings, poll_time: datetime) -> dict[str, dict]:
    """{city_slug: response} for `sim.cities` at the tz-aware `poll_time`, each exactly like the real endpoint."""
    fleet = build_fleet(sim)
    statuses = status_at(fleet, poll_time)
    layout = _layout(fleet.settings)
    return {
        slug: {
            "data": [_station(st, statuses) for st in layout[slug]],
            "status_code": 1000,
            "status_message": "Success",
            "timestamp": response_timestamp(fleet.settings.seed, slug, poll_time),
        }
        for slug in fleet.settings.cities
    }


def response_timestamp(seed: int, slug: str, poll_time: datetime) -> str:
    """When the endpoint answered: a few seconds after the poll, later for cities scraped later (as recorded)."""
    order = CHARGECLOUD_CITIES.index(slug)
    jitter = float(uniform([stable_key(seed, "answer", slug)], int(poll_time.timestamp()))[0])
    answered = poll_time + timedelta(seconds=1.0 + 0.15 * order + jitter)
    return answered.astimezone(BERLIN).replace(microsecond=0).isoformat()


# --- rendering ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _layout(sim: SimulationSettings) -> dict[str, list[dict]]:
    """Per city, the static fields of every station with its evses (point row) and connectors."""
    fleet: Fleet = build_fleet(sim)
    conns_by_point: dict[int, list[dict]] = {}
    for c in fleet.connectors.itertuples(index=False):
        conns_by_point.setdefault(c.point_row, []).append({
            "id": c.connector_id, "standard": c.standard, "format": c.format, "power_type": c.power_type,
            "ampere": c.ampere, "voltage": c.voltage, "max_power": int(c.max_power_kw), "tariff_id": None,
        })
    evses_by_station: dict[int, list[dict]] = {}
    for row, p in enumerate(fleet.charging_points.itertuples(index=False)):
        evses_by_station.setdefault(p.station_row, []).append({
            "row": row, "uid": p.evse_uid, "id": p.charging_point_id, "capabilities": p.capabilities,
            "physical_reference": p.physical_reference, "floor_level": p.floor_level,
            "chargePointPosition": p.charge_point_position,
            "chargePointParkingSpaceNumbers": p.parking_space_numbers,
            "chargingStationPosition": p.charging_station_position, "parking_sensor": bool(p.parking_sensor),
            "connectors": conns_by_point[row],
        })
    layout: dict[str, list[dict]] = {slug: [] for slug in fleet.settings.cities}
    for row, s in enumerate(fleet.stations.itertuples(index=False)):
        layout[s.city_slug].append({
            "id": s.station_id, "name": s.name, "address": s.address, "city": s.city, "postal_code": s.postal_code,
            "directions": s.directions, "latitude": f"{s.latitude:.6f}", "longitude": f"{s.longitude:.6f}",
            "operator": (s.operator_name, s.operator_hotline), "opening_times": s.opening_times, "owner": s.owner,
            "evses": evses_by_station[row],
        })
    return layout


def _station(st: dict, statuses) -> dict:
    name, hotline = st["operator"]
    return {
        "id": st["id"],
        "name": st["name"],
        "address": st["address"],
        "city": st["city"],
        "postal_code": st["postal_code"],
        "country": "DE",
        "directions": st["directions"],
        "coordinates": {"latitude": st["latitude"], "longitude": st["longitude"]},
        "distance_in_m": "0",
        "operator": {"name": name, "hotline": hotline},
        "opening_times": _opening_times(st["opening_times"]),
        "owner": st["owner"],
        "roaming": False,
        "evses": [_evse(e, statuses[e["row"]]) for e in st["evses"]],
    }


def _opening_times(ot: dict) -> dict:
    if "regular_hours" not in ot:
        return {"twentyfourseven": ot["twentyfourseven"]}
    return {"regular_hours": [dict(h) for h in ot["regular_hours"]], "twentyfourseven": ot["twentyfourseven"]}


def _evse(e: dict, status: str) -> dict:
    out = {
        "uid": e["uid"],
        "id": e["id"],
        "status": status,
        "capabilities": list(e["capabilities"]),
        "physical_reference": e["physical_reference"],
        "floor_level": e["floor_level"],
        "vehicle_type": "four_wheeled",
        "connectors": [{"id": c["id"], "status": status, **{k: v for k, v in c.items() if k != "id"}}
                       for c in e["connectors"]],
        "chargePointPosition": e["chargePointPosition"],
        "chargePointPublicComment": None,
        "chargePointParkingSpaceNumbers": e["chargePointParkingSpaceNumbers"],
        "chargingStationPosition": e["chargingStationPosition"],
    }
    if e["parking_sensor"]:
        out["parkingsensor_status"] = "OCCUPIED" if status in _OCCUPYING else "AVAILABLE"
    out["roaming"] = False
    return out
