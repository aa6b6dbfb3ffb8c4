"""The simulated fleet: stations, charging points, connectors and the points of interest around them.

Every station is generated from its own random stream (seed, city, station number), so a station keeps its id,
place and equipment when other cities are added or `stations_per_city` grows. POIs are placed first; a station's demand then
follows from the POIs that really lie within 300 m of it, which is the signal a utilization model should find.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ev_assets.lib.settings import SimulationSettings

from . import _places
from ._rng import generator, stable_key

POI_RADIUS_M = 300.0

# How much one POI within 300 m raises a station's arrival rate (a charging station nearby competes).
POI_WEIGHTS: dict[str, float] = {
    "supermarket": 0.6, "mall": 0.9, "doityourself": 0.45, "hardware": 0.15, "fast_food": 0.5, "cafe": 0.25,
    "restaurant": 0.25, "fuel": 0.15, "parking": 0.2, "charging_station": -0.15, "services": 0.8,
}

# Where a station stands decides what is near it, how fast it charges and how long people stay.
SITE_TYPES = ("residential", "retail", "centre", "public", "fuel")
_SITE_P = (0.38, 0.25, 0.17, 0.12, 0.08)
_SITE_DC_P = {"residential": 0.03, "retail": 0.3, "centre": 0.12, "public": 0.1, "fuel": 0.7}
_SITE_AC_MEDIAN_H = {"residential": 3.0, "retail": 1.3, "centre": 2.0, "public": 2.5, "fuel": 1.0}
_SITE_OVERNIGHT = {"residential": 1.25, "retail": 0.3, "centre": 0.8, "public": 1.0, "fuel": 0.2}
_SITE_COMMUTER = {"residential": 0.6, "retail": 0.15, "centre": 1.0, "public": 1.3, "fuel": 0.1}
# (tag key, tag value, probability, most of that kind) near a station of each site type
_NEAR_POIS = {
    "retail": [("shop", "supermarket", 0.9, 1), ("shop", "doityourself", 0.25, 1), ("amenity", "fast_food", 0.45, 1),
               ("amenity", "cafe", 0.35, 1), ("amenity", "parking", 0.8, 1), ("amenity", "fuel", 0.2, 1),
               ("shop", "hardware", 0.1, 1)],
    "centre": [("amenity", "cafe", 0.9, 3), ("amenity", "restaurant", 0.9, 3), ("amenity", "fast_food", 0.7, 2),
               ("shop", "mall", 0.35, 1), ("shop", "supermarket", 0.45, 1), ("amenity", "parking", 0.7, 2)],
    "fuel": [("amenity", "fuel", 0.95, 1), ("amenity", "fast_food", 0.55, 1), ("highway", "services", 0.35, 1),
             ("amenity", "cafe", 0.25, 1), ("amenity", "charging_station", 0.3, 1), ("amenity", "parking", 0.4, 1)],
    "public": [("amenity", "parking", 0.9, 1), ("amenity", "cafe", 0.2, 1), ("amenity", "restaurant", 0.25, 1)],
    "residential": [("shop", "supermarket", 0.12, 1), ("amenity", "cafe", 0.12, 1),
                    ("amenity", "restaurant", 0.15, 1), ("amenity", "parking", 0.15, 1)],
}
_BACKGROUND_POIS = [  # city-wide POIs not tied to a station: (key, value, share)
    ("amenity", "cafe", 0.2), ("amenity", "restaurant", 0.25), ("amenity", "fast_food", 0.12),
    ("shop", "supermarket", 0.11), ("amenity", "parking", 0.12), ("amenity", "fuel", 0.07),
    ("shop", "doityourself", 0.03), ("shop", "hardware", 0.03), ("shop", "mall", 0.01),
    ("amenity", "charging_station", 0.05), ("highway", "services", 0.01),
]
# Buildings and lots are OSM ways (polygons); small shops and cafes are nodes. Value: footprint edge in m.
_WAY_SIZE_M = {"supermarket": 60.0, "mall": 140.0, "doityourself": 90.0, "parking": 50.0, "fuel": 35.0,
               "services": 120.0}

_AC_BASE_RATE = 0.085  # arrivals per hour at a plain AC point at the daily profile's peak (1.0)
_DC_BASE_RATE = 0.30
_STANDARD_DIRECTIONS = {
    "koeln": "Detaillierte Informationen zum Tarif und zur Blockiergebühr finden Sie auf der TankE-Homepage "
             "unter tanke-netzwerk.de.",
    "goettingen": "Tarif für registrierte Kunden der Stadtwerke Göttingen AG: Startpauschale: 0,50 €; Preis pro "
                  "kWh: 0,39 €; Parkgebühr: 0,04€ / Min. ab der 240. Min.",
    "bonn": "24/7 TankE-Kundenhotline: 0800 4393030",
}


@dataclass(frozen=True, eq=False)
class Fleet:
    """What the simulator knows about the world; the feeds (chargecloud, OCM, OSM) are views of it.

    Frames are shared by the cache of `build_fleet`: treat them as read-only.
    `charging_points.station_row` / `connectors.point_row` are positions in the parent frame.
    """

    settings: SimulationSettings
    stations: pd.DataFrame
    charging_points: pd.DataFrame
    connectors: pd.DataFrame
    pois: pd.DataFrame


def build_fleet(sim: SimulationSettings) -> Fleet:
    """The fleet of `sim.cities` (cached: the same settings give the very same object).

    `sim.demand_factor` does not change the fleet; it rides along in `Fleet.settings` for the status simulation,
    which scales every arrival rate by it."""
    cities = tuple(sim.cities)
    for slug in cities:
        _places.city(slug)  # unknown slug -> ValueError listing the known ones
    if sim.stations_per_city < 1:
        raise ValueError(f"stations_per_city must be at least 1, got {sim.stations_per_city}")
    factor = float(sim.demand_factor)
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"demand_factor must be a positive number, got {sim.demand_factor}")
    fleet = _build_fleet(int(sim.seed), cities, int(sim.stations_per_city))
    return fleet if factor == 1.0 else _with_demand(fleet, factor)


@functools.lru_cache(maxsize=16)
def _with_demand(fleet: Fleet, factor: float) -> Fleet:
    """The same fleet (shared frames) with another demand factor in its settings."""
    return replace(fleet, settings=replace(fleet.settings, demand_factor=factor))


@functools.lru_cache(maxsize=16)
def _build_fleet(seed: int, cities: tuple[str, ...], stations_per_city: int) -> Fleet:
    stations, points, connectors, pois = [], [], [], []
    for slug in cities:
        s, p, c, o = _build_city(seed, slug, stations_per_city)
        stations += s
        points += p
        connectors += c
        pois += o
    stations_df = pd.DataFrame(stations)
    stations_df["key"] = np.array([s["key"] for s in stations], dtype=np.uint64)
    points_df = pd.DataFrame(points)
    connectors_df = pd.DataFrame(connectors)
    points_df["station_row"] = pd.Index(stations_df["station_id"]).get_indexer(points_df["station_id"])
    point_index = pd.Index(points_df["charging_point_id"])
    connectors_df["point_row"] = point_index.get_indexer(connectors_df["charging_point_id"])
    _add_demand(stations_df, points_df)
    sim = SimulationSettings(seed=seed, cities=cities, stations_per_city=stations_per_city)
    return Fleet(sim, stations_df, points_df, connectors_df, pd.DataFrame(pois, columns=_POI_COLUMNS))


# --- one city ---------------------------------------------------------------------------------------------


def _build_city(seed: int, slug: str, stations_per_city: int):
    city = _places.city(slug)
    ci = _places.city_index(slug)
    rng = generator(seed, "city", slug)
    n = max(1, round(stations_per_city * rng.uniform(0.75, 1.25)))
    stations, points, connectors, pois = [], [], [], []
    for j in range(n):
        srng = generator(seed, "station", slug, j)
        station, near = _station(srng, city, ci, j, seed)
        pois += near
        stations.append(station)
        p, c = _points(srng, city, station)
        points += p
        connectors += c
    pois += _background_pois(generator(seed, "background-pois", slug), city)
    _number_pois(pois, ci)
    _count_near_pois(stations, pois)
    return stations, points, connectors, pois


def _offset(lat: float, lon: float, dist_m: float, bearing: float) -> tuple[float, float]:
    """A point `dist_m` metres from (lat, lon) in direction `bearing` (radians); fine for a few km."""
    dlat = dist_m * math.cos(bearing) / 111_320.0
    dlon = dist_m * math.sin(bearing) / (111_320.0 * math.cos(math.radians(lat)))
    return lat + dlat, lon + dlon


def _station(rng: np.random.Generator, city: _places.City, ci: int, j: int, seed: int):
    site = SITE_TYPES[rng.choice(len(SITE_TYPES), p=_SITE_P)]
    radius_m = city.radius_km * 1000.0
    if site == "centre":
        dist = radius_m * 0.25 * math.sqrt(rng.uniform())
    elif site == "fuel":
        dist = radius_m * rng.uniform(0.5, 1.0)
    else:
        dist = radius_m * math.sqrt(rng.uniform(0.005, 1.0))
    lat, lon = _offset(city.lat, city.lon, dist, rng.uniform(0, 2 * math.pi))
    near = _near_pois(rng, city, site, lat, lon)
    station_num = 10_000 + ci * 250_000 + 7 * j + int(rng.integers(0, 7))
    street = str(rng.choice(_places.STREETS))
    address = f"{street} {int(rng.integers(1, 120))}"
    operator = city.operators[0] if len(city.operators) == 1 or rng.uniform() < 0.75 else str(
        rng.choice(city.operators[1:]))
    station = {
        "station_id": str(station_num),
        "station_num": station_num,
        "city_slug": city.slug,
        "name": _station_name(rng, city, site, address, near),
        "address": address,
        "city": city.name,
        "postal_code": f"{int(city.postal_code) + 2 * int(rng.integers(0, 1 + int(city.radius_km * 2))):05d}",
        "latitude": round(lat, 6),
        "longitude": round(lon, 6),
        "operator_name": operator,
        "operator_hotline": city.hotline,
        "owner": _owner(rng, city, near),
        "directions": _directions(rng, city, street),
        "opening_times": _opening_times(rng, site),
        "site_type": site,
        "parking_sensor": bool(rng.uniform() < 0.04),
        "evse_code": city.evse_code,
        # reliability: some stations are lemons, some backends lose contact often
        "fault_rate": 0.006 * float(rng.lognormal(0.0, 0.7)) * (6.0 if rng.uniform() < 0.05 else 1.0),
        "outage_rate": 0.3 if rng.uniform() < 0.1 else 0.025,
        "noise": float(rng.lognormal(0.0, 0.35)),
        "key": stable_key(seed, "station", station_num),
    }
    for poi in near:
        poi["near_station_id"] = station["station_id"]
    return station, near


def _near_pois(rng, city, site, lat, lon) -> list[dict]:
    pois = []
    for key, value, p, most in _NEAR_POIS[site]:
        if rng.uniform() >= p:
            continue
        for _ in range(int(rng.integers(1, most + 1))):
            plat, plon = _offset(lat, lon, rng.uniform(20.0, 270.0), rng.uniform(0, 2 * math.pi))
            pois.append(_poi(rng, city, key, value, plat, plon))
    return pois


def _background_pois(rng, city) -> list[dict]:
    """City-wide POIs: some land near stations by chance, as in a real city."""
    n = int(round(6.0 * city.radius_km**2))
    shares = np.array([s for _, _, s in _BACKGROUND_POIS])
    kinds = rng.choice(len(_BACKGROUND_POIS), size=n, p=shares / shares.sum())
    pois = []
    for k in kinds:
        key, value, _ = _BACKGROUND_POIS[k]
        dist = city.radius_km * 1000.0 * 1.2 * rng.uniform() ** 0.7
        plat, plon = _offset(city.lat, city.lon, dist, rng.uniform(0, 2 * math.pi))
        pois.append(_poi(rng, city, key, value, plat, plon))
    return pois


_POI_COLUMNS = ["element", "osm_id", "city_slug", "tag_key", "tag_value", "name", "brand", "latitude", "longitude",
                "size_m", "near_station_id"]


def _poi(rng, city, key, value, lat, lon) -> dict:
    name = rng.choice(np.array(_places.POI_NAMES[(key, value)], dtype=object))
    if name is not None:
        name = name.format(city=city.name, street=str(rng.choice(_places.STREETS)))
    size = _WAY_SIZE_M.get(value, 0.0) * float(rng.uniform(0.7, 1.4)) if value in _WAY_SIZE_M else 0.0
    return {
        "element": "way" if size else "node",
        "osm_id": 0,
        "city_slug": city.slug,
        "tag_key": key,
        "tag_value": value,
        "name": name,
        "brand": name if name in _places.BRANDED else None,
        "latitude": round(lat, 7),
        "longitude": round(lon, 7),
        "size_m": size,
        "near_station_id": None,
    }


def _number_pois(pois: list[dict], ci: int) -> None:
    """OSM-like ids: nodes and ways are numbered separately, in city-specific ranges."""
    next_id = {"node": 1_200_000_000 + ci * 2_000_000, "way": 90_000_000 + ci * 1_000_000}
    for poi in pois:
        next_id[poi["element"]] += 1
        poi["osm_id"] = next_id[poi["element"]]


def _count_near_pois(stations: list[dict], pois: list[dict]) -> None:
    """Count (and weigh) the POIs really within 300 m of each station, whichever way they got there."""
    if not pois:
        for s in stations:
            s["pois_300m"], s["poi_score"] = 0, 0.0
        return
    plat = np.array([p["latitude"] for p in pois])
    plon = np.array([p["longitude"] for p in pois])
    weight = np.array([POI_WEIGHTS[p["tag_value"]] for p in pois])
    for s in stations:
        dy = (plat - s["latitude"]) * 111_320.0
        dx = (plon - s["longitude"]) * 111_320.0 * math.cos(math.radians(s["latitude"]))
        near = np.hypot(dx, dy) <= POI_RADIUS_M
        s["pois_300m"] = int(near.sum())
        s["poi_score"] = float(weight[near].sum())


def _station_name(rng, city, site, address, near) -> str:
    prefix = city.name_prefix
    if prefix.endswith("_"):
        return f"{prefix}{int(rng.integers(30000, 50000))}" if city.slug == "dortmund" else f"{prefix}{address}"
    brands = [p["name"] for p in near if p["name"] and p["tag_value"] in ("supermarket", "fuel", "doityourself",
                                                                           "mall")]
    if brands and site in ("retail", "fuel"):
        base = f'Parkplatz "{brands[0]}"' if rng.uniform() < 0.6 else f"{brands[0]} {city.name}"
    elif site == "centre" and rng.uniform() < 0.5:
        base = f"Parkhaus {address.rsplit(' ', 1)[0]}"
    elif site == "public" and rng.uniform() < 0.5:
        base = str(rng.choice(["Rathaus", "Bahnhof", "Sporthalle", "Schwimmbad", "Friedhof", "Stadthalle"]))
        base = f"{city.name} {base}"
    else:
        base = address
    return f"{prefix} {base}" if prefix else base


def _owner(rng, city, near) -> str | None:
    u = rng.uniform()
    if u < 0.9:
        return None
    if u < 0.98:
        return ""
    shops = [p["name"] for p in near if p["tag_key"] == "shop" and p["name"]]
    return f"{shops[0]} Markt {city.name}" if shops else f"Stadt {city.name}"


def _directions(rng, city, street) -> str | None:
    u = rng.uniform()
    if u < 0.01:
        return None
    if u < 0.35 and city.slug in _STANDARD_DIRECTIONS:
        return _STANDARD_DIRECTIONS[city.slug]
    if u < 0.42:
        return f"Zufahrt über {street}. Die Ladesäule steht auf dem Kundenparkplatz."
    return ""


def _opening_times(rng, site) -> dict:
    """Nearly all stations are open around the clock; a few (shop car parks) only with the shop."""
    if rng.uniform() >= (0.12 if site == "retail" else 0.015):
        return {"twentyfourseven": True}
    weekdays = [(d, "07:00:00", "21:00:00") for d in range(1, 7)] if site == "retail" else (
        [(d, "07:00:00", "18:00:00") for d in range(1, 6)] + [(6, "10:00:00", "14:00:00")])
    hours = [{"weekday": d, "period_begin": b, "period_end": e} for d, b, e in weekdays]
    return {"regular_hours": hours, "twentyfourseven": False}


# --- charging points and connectors -----------------------------------------------------------------------


def _points(rng, city, station):
    site = station["site_type"]
    n = int(rng.choice([1, 2, 3, 4], p=[0.2, 0.65, 0.07, 0.08]))
    dc_station = rng.uniform() < _SITE_DC_P[site]
    ac_kw = 22 if rng.uniform() < 0.8 else 11
    schuko = (not dc_station) and rng.uniform() < 0.15
    dc_kw = int(rng.choice([50, 75, 150, 300], p=[0.45, 0.1, 0.3, 0.15]))
    chademo = dc_station and dc_kw <= 150 and rng.uniform() < 0.35
    reservable = rng.uniform() < 0.5
    sides = [("links", "rechts"), ("left", "right"), ("linke Seite", "rechte Seite")][int(rng.integers(0, 3))]
    described = rng.uniform() < 0.2  # the operator filled in positions / parking spaces
    points, connectors = [], []
    for k in range(n):
        uid = 20_000 + station["station_num"] * 5 + k
        is_dc = dc_station and not (n >= 2 and k == n - 1 and rng.uniform() < 0.35)
        point = {
            "charging_point_id": f"DE*{station['evse_code']}*E{station['station_num']:05d}*{k + 1:03d}",
            "evse_uid": str(uid),
            "station_id": station["station_id"],
            "city_slug": city.slug,
            "kind": "DC" if is_dc else "AC",
            "max_power_kw": dc_kw if is_dc else ac_kw,
            "capabilities": (("RESERVABLE",) if reservable else ()) + ("RFID_READER", "REMOTE_START_STOP_CAPABLE"),
            "reservable": reservable,
            "physical_reference": _physical_reference(rng, station, k, sides),
            "floor_level": "" if rng.uniform() < 0.97 else str(rng.choice(["EG", "Parkdeck 1", "Tiefgarage"])),
            "charge_point_position": sides[k % 2] if described and n == 2 else None,
            "parking_space_numbers": str(k + 1) if described and rng.uniform() < 0.5 else None,
            "charging_station_position": str(rng.choice(["Parkplatz", "Öffentlicher Parkplatz", f"Wallbox {k + 1}"]))
            if described and rng.uniform() < 0.3 else None,
            "parking_sensor": station["parking_sensor"],
        }
        points.append(point)
        if is_dc:
            plugs = [_ccs(dc_kw)] + ([_chademo()] if chademo else [])
        else:
            plugs = [_type2(ac_kw, cable=rng.uniform() < 0.02)] + ([_schuko()] if schuko else [])
        for c, plug in enumerate(plugs):
            connectors.append({"connector_id": str(uid * 3 + c + 300_000),
                               "charging_point_id": point["charging_point_id"],
                               "station_id": station["station_id"], "city_slug": city.slug, **plug})
    return points, connectors


def _physical_reference(rng, station, k, sides) -> str | None:
    u = rng.uniform()
    if u < 0.05:
        return None
    if u < 0.09:
        return f"{station['station_num'] % 1000}{'RL'[k % 2]}"
    return ""


def _type2(kw: int, cable: bool) -> dict:
    return {"standard": "IEC_62196_T2", "format": "CABLE" if cable else "SOCKET", "power_type": "AC_3_PHASE",
            "ampere": "32" if kw == 22 else "16", "voltage": "400", "max_power_kw": kw}


def _schuko() -> dict:
    return {"standard": "DOMESTIC_F", "format": "SOCKET", "power_type": "AC_1_PHASE", "ampere": "13",
            "voltage": "230", "max_power_kw": 3}


_CCS_ELECTRICS = {50: ("125", "500"), 75: ("200", "400"), 150: ("500", "400"), 300: ("500", "1000")}


def _ccs(kw: int) -> dict:
    ampere, voltage = _CCS_ELECTRICS[kw]
    return {"standard": "IEC_62196_T2_COMBO", "format": "CABLE", "power_type": "DC", "ampere": ampere,
            "voltage": voltage, "max_power_kw": kw}


def _chademo() -> dict:
    return {"standard": "CHADEMO", "format": "CABLE", "power_type": "DC", "ampere": "125", "voltage": "500",
            "max_power_kw": 50}


# --- demand ------------------------------------------------------------------------------------------------


def _add_demand(stations: pd.DataFrame, points: pd.DataFrame) -> None:
    """Per-point arrival rates and dwell parameters, from the city, the POIs near the station and noise.

    demand = 1 + weighted POIs within 300 m (clipped), so a model can learn utilization from POI features.
    """
    busyness = stations["city_slug"].map(lambda s: _places.CITIES[s].busyness)
    stations["demand_factor"] = np.clip(1.0 + stations["poi_score"], 0.6, 3.5)
    station_rate = busyness * stations["demand_factor"] * stations["noise"]
    n_points = points.groupby("station_row")["charging_point_id"].transform("size")
    sr = points["station_row"].to_numpy()
    is_dc = (points["kind"] == "DC").to_numpy()
    site = stations["site_type"].to_numpy()[sr]
    points["arrival_rate"] = (np.where(is_dc, _DC_BASE_RATE, _AC_BASE_RATE) * station_rate.to_numpy()[sr]
                              * n_points.to_numpy() ** -0.25)
    points["ac_median_h"] = [_SITE_AC_MEDIAN_H[s] for s in site]
    points["overnight_factor"] = [_SITE_OVERNIGHT[s] for s in site]
    points["commuter_factor"] = [_SITE_COMMUTER[s] for s in site]
    points["fault_rate"] = stations["fault_rate"].to_numpy()[sr]
    points["key"] = np.array([stable_key(k, "point", cp) for k, cp in zip(stations["key"].to_numpy()[sr],
                                                                            points["charging_point_id"])],
                             dtype=np.uint64)
    stations.drop(columns=["noise"], inplace=True)
