"""A seeded, deterministic simulator that feeds the `simulated` mode of every source.

It emits the real schemas (chargecloud polls, Open Charge Map, OSM features as osmnx returns them) for a fleet of
stations in the 38 chargecloud cities, with status dynamics that have daily and weekly rhythms, realistic session
lengths, faults and outages, and demand that grows with the points of interest around a station.

Same `SimulationSettings` and time in, identical output out: no Dagster, no network, no environment variables.

    build_fleet(sim)                -> Fleet (stations, charging_points, connectors, pois frames; cached)
    chargecloud_poll(sim, when)     -> {city_slug: endpoint response}
    day_status(sim, day, level)     -> slot / item_id / status for the 144 poll slots of a UTC day
    ocm_response(sim), ocm_reference(sim)
    osm_features(sim, city, tags)   -> GeoDataFrame like osmnx.features_from_xml
"""

from .chargecloud import chargecloud_poll
from .fleet import Fleet, build_fleet
from .ocm import ocm_reference, ocm_response
from .osm import osm_features
from .status import POLL_INTERVAL_S, SLOTS_PER_DAY, STATUSES, day_status

__all__ = [
    "Fleet",
    "POLL_INTERVAL_S",
    "SLOTS_PER_DAY",
    "STATUSES",
    "build_fleet",
    "chargecloud_poll",
    "day_status",
    "ocm_reference",
    "ocm_response",
    "osm_features",
]
