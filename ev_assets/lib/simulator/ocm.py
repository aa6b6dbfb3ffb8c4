"""Simulated Open Charge Map: the API v3 `/poi` compact response for the fleet, and its reference data.

Like the real registry, OCM knows most but not all stations, places them a few metres off, titles them
differently, and has a few sites chargecloud does not list: reconciliation has real work to do. Entries follow
the two shapes the real German response has: Bundesnetzagentur imports (provider 29: one connection per plug,
metadata attribution) and community entries (provider 1: grouped connections with Quantity, NumberOfPoints).
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np

from ev_assets.lib.settings import SimulationSettings

from . import _places
from ._rng import generator, stable_key
from .fleet import build_fleet

_COVERAGE = 0.85  # share of fleet stations that OCM lists
_EXTRA = 0.08  # OCM-only sites, relative to the fleet
_BNETZA_ATTRIBUTION = ("Data from the German chargepoint registry provided by Bundesnetzagentur.de under the "
                       "CC-BY 4.0 license")
_UNKNOWN_OPERATOR_SHARE = 0.1

# (standard, format) -> OCM ConnectionTypeID; power_type -> CurrentTypeID
_CONNECTION_TYPE = {("IEC_62196_T2", "SOCKET"): 25, ("IEC_62196_T2", "CABLE"): 1036,
                    ("IEC_62196_T2_COMBO", "CABLE"): 33, ("CHADEMO", "CABLE"): 2, ("DOMESTIC_F", "SOCKET"): 28}
_CURRENT_TYPE = {"AC_1_PHASE": 10, "AC_3_PHASE": 20, "DC": 30}


def ocm_response(sim: SimulationSettings) -> list[dict]:
    """What `GET /v3/poi?countrycode=DE&compact=true&verbose=false` would return for the simulated fleet."""
    fleet = build_fleet(sim)
    c = fleet.connectors
    plugs: dict[str, list[tuple]] = {}
    for sid, *plug in zip(c["station_id"], c["standard"], c["format"], c["power_type"], c["max_power_kw"]):
        plugs.setdefault(sid, []).append(tuple(plug))
    points = fleet.charging_points.groupby("station_id", sort=False).size().to_dict()
    sites = []
    for s in fleet.stations.itertuples(index=False):
        rng = generator(sim.seed, "ocm", s.station_id)
        if rng.uniform() < _COVERAGE:
            sites.append((rng, s.city_slug, s.name, s.address, s.city, s.postal_code, s.latitude, s.longitude,
                          plugs[s.station_id], points[s.station_id]))
    for slug in fleet.settings.cities:
        sites += _extra_sites(sim.seed, slug, int((fleet.stations["city_slug"] == slug).sum()))

    order = np.argsort([stable_key(sim.seed, "ocm", site[2], site[6]) for site in sites], kind="stable")
    out, next_conn = [], 310_000 + 17 * (sim.seed % 1000)
    for i, j in enumerate(order):
        poi = _poi(sim, 180_000 + 3 * i + int(j) % 3, next_conn, *sites[j])
        next_conn += len(poi["Connections"]) + 2
        out.append(poi)
    if out and not any(p.get("OperatorID") == _places.UNKNOWN_OCM_OPERATOR_ID for p in out):
        _set_operator(out[0], _places.UNKNOWN_OCM_OPERATOR_ID)  # the reference data never knows every operator
    return out


def _extra_sites(seed: int, slug: str, n_city: int) -> list[tuple]:
    city = _places.city(slug)
    rng = generator(seed, "ocm-extra", slug)
    sites = []
    for _ in range(int(rng.binomial(n_city, _EXTRA))):
        dist, bearing = city.radius_km * 1000 * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
        lat = city.lat + dist * math.cos(bearing) / 111_320
        lon = city.lon + dist * math.sin(bearing) / (111_320 * math.cos(math.radians(city.lat)))
        address = f"{rng.choice(_places.STREETS)} {int(rng.integers(1, 80))}"
        kw = int(rng.choice([11, 22]))
        plugs = [("IEC_62196_T2", "SOCKET", "AC_3_PHASE", kw)] * 2
        sites.append((rng, slug, address, address, city.name, city.postal_code, round(lat, 6), round(lon, 6),
                      plugs, 2))
    return sites


def _poi(sim, ocm_id, first_conn_id, rng, slug, name, address, town, postcode, lat, lon, plugs, n_points) -> dict:
    city = _places.city(slug)
    bnetza = rng.uniform() < 0.55
    start = datetime(sim.start.year, sim.start.month, sim.start.day, tzinfo=timezone.utc)
    created = start - timedelta(days=float(rng.uniform(30, 1100)))
    verified = created + (start - created) * float(rng.uniform(0, 1))
    jitter, bearing = rng.uniform(2, 18), rng.uniform(0, 2 * math.pi)  # metres off the chargecloud position
    address_info = {
        "ID": ocm_id + 359,
        "Title": address if bnetza or rng.uniform() < 0.5 else name,
        "AddressLine1": address,
    }
    if rng.uniform() < 0.9:
        address_info["Town"] = town
    if rng.uniform() < 0.3:
        address_info["StateOrProvince"] = city.state
    if "Town" in address_info:
        address_info["Postcode"] = postcode
    address_info.update({
        "CountryID": 87,
        "Latitude": round(lat + jitter * math.cos(bearing) / 111_320, 6),
        "Longitude": round(lon + jitter * math.sin(bearing) / (111_320 * math.cos(math.radians(lat))), 6),
        "DistanceUnit": 0,
    })
    poi: dict = {
        "IsRecentlyVerified": bool(rng.uniform() < 0.05),
        "DateLastVerified": _iso(verified),
        "ID": ocm_id,
        "UUID": str(uuid.UUID(int=stable_key(sim.seed, "uuid", ocm_id) << 64 | stable_key(ocm_id, "uuid"))).upper(),
        "DataProviderID": 29 if bnetza else 1,
    }
    if bnetza:
        poi["DataProvidersReference"] = str(int(rng.integers(1000, 60000)))
    operator = _operator_id(rng, city, bnetza)
    if operator is not None:
        poi["OperatorID"] = operator
    if not bnetza:
        poi["UsageTypeID"] = int(rng.choice([1, 4, 5], p=[0.5, 0.4, 0.1]))
        if rng.uniform() < 0.2:
            poi["UsageCost"] = str(rng.choice(["0,39 € je kWh", "0,45€ / kWh", "€ 0.49/kWh", "0,59 €/kWh"]))
    poi["AddressInfo"] = address_info
    poi["Connections"] = _connections(plugs, first_conn_id, grouped=not bnetza)
    if not bnetza:
        poi["NumberOfPoints"] = int(n_points)
        if rng.uniform() < 0.05:
            poi["GeneralComments"] = "Kundenparkplatz, während der Öffnungszeiten zugänglich"
    poi["StatusTypeID"] = 50
    poi["DateLastStatusUpdate"] = _iso(verified)
    if bnetza:
        poi["MetadataValues"] = [{"ID": ocm_id // 3 - 40_000, "MetadataFieldID": 4, "ItemValue": _BNETZA_ATTRIBUTION}]
    poi["DataQualityLevel"] = 3 if bnetza else 1
    poi["DateCreated"] = _iso(created)
    poi["SubmissionStatusTypeID"] = 100 if bnetza else 200
    return poi


def _operator_id(rng, city, bnetza: bool) -> int | None:
    if bnetza and rng.uniform() < 0.4:
        return None  # many registry imports carry no operator
    if rng.uniform() < _UNKNOWN_OPERATOR_SHARE:
        return _places.UNKNOWN_OCM_OPERATOR_ID
    return city.ocm_operator_id if city.ocm_operator_id is not None else 1


def _set_operator(poi: dict, operator_id: int) -> None:
    """Insert OperatorID at its place in the key order (after DataProvider fields)."""
    items = [(k, v) for k, v in poi.items() if k != "OperatorID"]
    at = next(i for i, (k, _) in enumerate(items) if k in ("UsageTypeID", "UsageCost", "AddressInfo"))
    items.insert(at, ("OperatorID", operator_id))
    poi.clear()
    poi.update(items)


def _connections(plugs, first_id: int, grouped: bool) -> list[dict]:
    """One entry per plug (registry imports) or per plug kind with a Quantity (community entries)."""
    kinds: dict[tuple, int] = {}
    for plug in plugs:
        kinds[plug] = kinds.get(plug, 0) + 1
    entries = list(kinds.items()) if grouped else [(p, None) for p in plugs]
    out = []
    for i, ((standard, fmt, power_type, kw), quantity) in enumerate(entries):
        conn = {
            "ID": first_id + i,
            "ConnectionTypeID": _CONNECTION_TYPE[(standard, fmt)],
            "StatusTypeID": 50,
            "LevelID": 3 if kw >= 40 else 2,
            "PowerKW": 3.7 if standard == "DOMESTIC_F" else int(kw),
            "CurrentTypeID": _CURRENT_TYPE[power_type],
        }
        if quantity is not None:
            conn["Quantity"] = quantity
        out.append(conn)
    return out


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:00Z")


# --- reference data -------------------------------------------------------------------------------------------


def ocm_reference(sim: SimulationSettings) -> dict:
    """Reference data decoding the IDs that `ocm_response` uses, except one OperatorID (as in real life)."""
    pois = ocm_response(sim)
    used_ops = {p["OperatorID"] for p in pois if "OperatorID" in p}
    used_usage = {p["UsageTypeID"] for p in pois if "UsageTypeID" in p}
    used_conn = {c["ConnectionTypeID"] for p in pois for c in p["Connections"]}
    return {
        "_id": {"$oid": f"{stable_key(sim.seed, 'ocm-reference'):016x}{0x61166215:08x}"},
        "ChargerTypes": [dict(x) for x in _CHARGER_TYPES],
        "ConnectionTypes": [dict(x) for x in _CONNECTION_TYPES if x["ID"] in used_conn],
        "CurrentTypes": [dict(x) for x in _CURRENT_TYPES],
        "Countries": [{"ID": 87, "Title": "Germany", "ISOCode": "DE", "ContinentCode": "EU"}],
        "DataProviders": [_data_provider(1), _data_provider(29)],
        "Operators": [_operator(i) for i in sorted(used_ops) if i != _places.UNKNOWN_OCM_OPERATOR_ID],
        "StatusTypes": [dict(x) for x in _STATUS_TYPES],
        "SubmissionStatusTypes": [{"ID": 100, "Title": "Imported and Published", "IsLive": True},
                                  {"ID": 200, "Title": "Submission Published", "IsLive": True}],
        "UsageTypes": [dict(x) for x in _USAGE_TYPES if x["ID"] in used_usage],
        "UserCommentTypes": [{"ID": 10, "Title": "General Comment"}],
        "CheckinStatusTypes": [{"ID": 0, "Title": "Did Not Visit Location", "IsPositive": None,
                                "IsAutomatedCheckin": False}],
        "DataTypes": [{"ID": 1, "Title": "Single Line Text"}, {"ID": 10, "Title": "Option List"}],
        "MetadataGroups": [{"ID": 1, "Title": "Extended Information", "DataProviderID": 1, "IsRestrictedEdit": False,
                            "IsPublicInterest": True, "MetadataFields": [
                                {"ID": 4, "Title": "Attribution", "MetadataGroupID": 1, "DataTypeID": 10,
                                 "DataType": None, "MetadataFieldOptions": [
                                     {"ID": 4, "Title": "Positioning", "MetadataFieldID": 4}]}]}],
        "UserProfile": None,
        "ChargePoint": {"ID": -1, "UUID": None, "DataProviderID": None, "OperatorID": None, "UsageTypeID": None,
                        "AddressInfo": None, "Connections": [], "NumberOfPoints": 1, "StatusTypeID": None},
        "UserComment": {"ID": 0, "ChargePointID": 0, "CommentTypeID": None, "Comment": "", "Rating": None},
    }


_CHARGER_TYPES = (
    {"ID": 1, "Title": "Level 1 : Low (Under 2kW)", "Comments": "Under 2 kW, usually domestic socket types",
     "IsFastChargeCapable": False},
    {"ID": 2, "Title": "Level 2 : Medium (Over 2kW)", "Comments": "Over 2 kW, usually non-domestic socket type",
     "IsFastChargeCapable": False},
    {"ID": 3, "Title": "Level 3:  High (Over 40kW)", "Comments": "40KW and Higher", "IsFastChargeCapable": True},
)
_CONNECTION_TYPES = (
    {"ID": 2, "Title": "CHAdeMO", "FormalName": "IEC 62196-3 Configuration AA", "IsDiscontinued": None,
     "IsObsolete": None},
    {"ID": 25, "Title": "Type 2 (Socket Only)", "FormalName": "IEC 62196-2 Type 2", "IsDiscontinued": False,
     "IsObsolete": False},
    {"ID": 28, "Title": "CEE 7/4 - Schuko - Type F", "FormalName": "CEE 7/4", "IsDiscontinued": False,
     "IsObsolete": False},
    {"ID": 33, "Title": "CCS (Type 2)", "FormalName": "IEC 62196-3 Configuration FF", "IsDiscontinued": False,
     "IsObsolete": False},
    {"ID": 1036, "Title": "Type 2 (Tethered Connector) ", "FormalName": "IEC 62196-2", "IsDiscontinued": False,
     "IsObsolete": False},
)
_CURRENT_TYPES = (
    {"ID": 10, "Title": "AC (Single-Phase)", "Description": "Alternating Current - Single Phase"},
    {"ID": 20, "Title": "AC (Three-Phase)", "Description": "Alternating Current - Three Phase"},
    {"ID": 30, "Title": "DC", "Description": "Direct Current"},
)
_STATUS_TYPES = tuple(
    {"ID": i, "Title": t, "IsOperational": op, "IsUserSelectable": sel} for i, t, op, sel in (
        (0, "Unknown", None, True), (10, "Currently Available (Automated Status)", True, False),
        (20, "Currently In Use (Automated Status)", True, False), (30, "Temporarily Unavailable", True, True),
        (50, "Operational", True, True), (75, "Partly Operational (Mixed)", True, True),
        (100, "Not Operational", False, True), (150, "Planned For Future Date", False, True),
        (200, "Removed (Decommissioned)", False, True), (210, "Removed (Duplicate Listing)", False, True)))
_USAGE_TYPES = (
    {"ID": 1, "Title": "Public", "IsPayAtLocation": None, "IsMembershipRequired": None, "IsAccessKeyRequired": None},
    {"ID": 4, "Title": "Public - Membership Required", "IsPayAtLocation": False, "IsMembershipRequired": True,
     "IsAccessKeyRequired": True},
    {"ID": 5, "Title": "Public - Pay At Location", "IsPayAtLocation": True, "IsMembershipRequired": False,
     "IsAccessKeyRequired": False},
)
_OPERATOR_TITLES = {
    1: ("(Unknown Operator)", None), 45: ("(Business Owner at Location)", None),
    69: ("ladenetz.de", "http://ladenetz.de"),
    72: ("RheinEnergie AG", "http://www.rheinenergie.com/TankEn-Registrierung"),
    86: ("EnBW (D)", "https://www.enbw.com/privatkunden/tarife-und-produkte/e-mobilitaet/"),
    132: ("Stadtwerke Göttingen", "http://www.swgoe.de/"),
    225: ("Stadtwerke Münster", "https://www.stadtwerke-muenster.de/"),
    234: ("N-ERGIE", "https://www.n-ergie.de/"), 2243: ("eins", "http://www.eins.de/"),
}


def _operator(operator_id: int) -> dict:
    title, url = _OPERATOR_TITLES.get(operator_id, (f"Operator {operator_id}", None))
    return {"ID": operator_id, "Title": title, "WebsiteURL": url, "Comments": None, "PhonePrimaryContact": None,
            "PhoneSecondaryContact": None, "IsPrivateIndividual": False, "AddressInfo": None, "BookingURL": None,
            "ContactEmail": None, "FaultReportEmail": None, "IsRestrictedEdit": False}


def _data_provider(provider_id: int) -> dict:
    title, url, license_ = {
        1: ("Open Charge Map Contributors", "http://openchargemap.org",
            "Licensed under Creative Commons Attribution-ShareAlike 4.0 International (CC BY-SA 4.0)"),
        29: ("Bundesnetzagentur.de", "https://bundesnetzagentur.de",
             "Provided by Bundesnetzagentur.de under the CC-BY 4.0 license"),
    }[provider_id]
    status = {"ID": 1, "Title": "Manual Data Entry", "IsProviderEnabled": True} if provider_id == 1 else {
        "ID": 20, "Title": "Automated Import", "IsProviderEnabled": True}
    return {"ID": provider_id, "Title": title, "WebsiteURL": url, "Comments": None, "DataProviderStatusType": status,
            "IsRestrictedEdit": False, "IsOpenDataLicensed": True, "IsApprovedImport": True, "License": license_,
            "DateLastImported": None}
