"""chargecloud data contracts: what the real feeds get wrong, and what a value must be to load as it is.

Each contract is an asset check on the table it protects (`CONTRACTS`). `poll_failures` applies the response and
time rules to a stored poll the way flattening does, so the `all_cities_polled` check and
`raw.chargecloud_poll_log` agree; `pick_attempt` uses them to choose among several stored attempts at one slot.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from ev_assets.lib import vocabulary
from ev_assets.lib.sources.chargecloud.slots import POLL_TIME_TOLERANCE, parse_time
from ev_assets.lib.values import number

FAILED_KEY = "_failed"
SUPERSEDED_KEY = "_superseded"  # set when loading: what the earlier, failed attempts at the slot said
OK_STATUS_CODE = 1000
STATUSES = frozenset(vocabulary.STATUSES)
# Germany with a margin (the same box as the dbt test `station_coordinates_in_germany`).
GERMANY_LATITUDE = (47.2, 55.1)
GERMANY_LONGITUDE = (5.8, 15.1)
# Plausible connector ratings; the feed sends kW, so 22000 "kW" is a value in W.
CONNECTOR_RANGES = {"ampere": (0.0, 1000.0, "A"), "voltage": (0.0, 1500.0, "V"), "max_power": (0.0, 1000.0, "kW")}
# Each contract is an asset check on the table it protects: rule -> (table, check name, what it asserts).
CONTRACTS = {
    "poll": ("chargecloud_poll_log", "every_poll_usable",
             "Every recording and every city's answer of every poll could be used: readable, a plausible poll time, "
             "status_code 1000 without an error message, stations in data."),
    "status": ("status_chargingpoints", "statuses_valid",
               "Every charging point and connector has a status of the vocabulary, and one status per poll: an id "
               "reported twice in one poll (e.g. by two cities) keeps the first."),
    "ids": ("chargingpoints", "records_have_ids",
            "Every station, charging point and connector is a JSON object with an id, and child lists are lists."),
    "ratings": ("connectors", "plausible_connector_ratings",
                "Connector ampere, voltage and max_power are numbers in range (max_power in kW, at most 1000)."),
    "coordinates": ("chargingstations", "coordinates_in_germany",
                    "Every station has coordinates, inside Germany."),
}


def _response_problem(response: Any) -> str | None:
    """Why a city's response cannot be loaded at all, or None."""
    if not isinstance(response, dict):
        return f"response is not a JSON object (got {type(response).__name__})"
    code = response.get("status_code")
    if str(code) != str(OK_STATUS_CODE):
        return f"status_code {code!r} ({response.get('status_message') or 'no status_message'}), expected 1000"
    data = response.get("data")
    if data is None:
        return "no data in the response"
    if not isinstance(data, list):
        return f"data is not a list (got {type(data).__name__})"
    if not data:
        return "empty data: no stations"
    return None


def _message_problem(response: dict) -> str | None:
    """A `status_message` reporting an error although `status_code` says success: the data loads, but the poll
    is not clean."""
    message = str(response.get("status_message") or "").strip()
    if message and not message.lower().startswith(("success", "ok")):
        return f"status_message {message!r} reports an error although status_code is {OK_STATUS_CODE}"
    return None


def poll_failures(envelope: Any, slot: datetime | None = None) -> dict[str, str]:
    """city (or recording) -> why its part of a stored poll could not be used cleanly; empty for a clean poll.

    The same rules as flattening, so the `all_cities_polled` check and `raw.chargecloud_poll_log` agree.
    """
    if not isinstance(envelope, dict):
        return {"_envelope": "poll envelope is not a JSON object"}
    failed = {str(k): str(v) for k, v in (envelope.get(FAILED_KEY) or {}).items() if k not in envelope}
    for city, response in envelope.items():
        if str(city).startswith("_"):
            continue
        problem = _response_problem(response) or _message_problem(response) or (
            _time_problem(parse_time(response.get("timestamp")), slot) if slot is not None else None
        )
        if problem:
            failed[str(city)] = problem
    return failed


def _time_problem(poll_time: datetime | None, slot: datetime) -> str | None:
    """Why a city's response time cannot belong to the poll slot `slot`, or None (a missing time is allowed)."""
    if poll_time is not None and abs(poll_time - slot) > POLL_TIME_TOLERANCE:
        return f"timestamp {poll_time:%Y-%m-%d %H:%M} UTC is more than {POLL_TIME_TOLERANCE} from the poll slot"
    return None


def _coordinates(coords: Any) -> tuple[float | None, float | None, str | None]:
    """(latitude, longitude, problem). Both or neither: half a position is no position."""
    if not isinstance(coords, dict):
        return None, None, "coordinates missing" if coords is None else f"coordinates not an object: {coords!r}"
    lat, lat_problem = number(coords.get("latitude"))
    lon, lon_problem = number(coords.get("longitude"))
    if lat is None or lon is None:
        problem = "; ".join(
            f"{name} {p or 'missing or empty'}"
            for name, v, p in (("latitude", lat, lat_problem), ("longitude", lon, lon_problem))
            if v is None
        )
        return None, None, problem
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None, None, f"out of range ({lat}, {lon})"
    if lat == 0 and lon == 0:
        return None, None, "placeholder position (0, 0)"
    if not (GERMANY_LATITUDE[0] <= lat <= GERMANY_LATITUDE[1] and GERMANY_LONGITUDE[0] <= lon <= GERMANY_LONGITUDE[1]):
        return None, None, f"({lat}, {lon}) is outside Germany"
    return lat, lon, None


def _status(value: Any) -> tuple[str | None, str | None]:
    """(status upper-case, problem)."""
    if value is None:
        return None, "missing status"
    status = str(value).strip().upper()
    if status not in STATUSES:
        return None, f"unknown status {str(value)!r}"
    return status, None



# ---------------------------------------------------------------------------------------------------------
def pick_attempt(attempts: list[tuple[Any, str]]) -> tuple[int, Any]:
    """(index, envelope to load) of the stored attempts `(envelope, file name)` at one slot, oldest first.

    A failed poll must not block a later good one: the attempt with the most usable cities wins (the latest on a
    tie), and when earlier attempts did worse, the envelope returned says so under `_superseded`.
    """
    if len(attempts) == 1:
        return 0, attempts[0][0]

    def usable(envelope: Any) -> int:
        cities = [k for k in envelope if not str(k).startswith("_")] if isinstance(envelope, dict) else []
        return len(cities) - len(set(cities) & set(poll_failures(envelope)))

    scores = [usable(envelope) for envelope, _ in attempts]
    best = max(range(len(attempts)), key=lambda i: (scores[i], i))
    envelope = attempts[best][0]
    worse = [
        f"{Path(name).name} ({'; '.join(f'{k}: {v}' for k, v in list(poll_failures(env).items())[:3]) or 'fewer cities'})"
        for i, (env, name) in enumerate(attempts)
        if scores[i] < scores[best]
    ]
    if worse and isinstance(envelope, dict):
        envelope = {**envelope, SUPERSEDED_KEY: "earlier attempt(s) failed: " + ", ".join(worse)}
    return best, envelope
