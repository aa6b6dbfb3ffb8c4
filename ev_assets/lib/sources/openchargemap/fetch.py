"""Open Charge Map fetching: the raw pull in the source's mode (live, replay or simulated).

A pull is `{"poi": [...], "reference": {...} | None}`: the `/v3/poi/` answer in compact mode (reference data
only as numeric IDs) plus the `/v3/referencedata/` answer needed to decode those IDs. Both are kept together
so a stored pull can be parsed again later without asking the API (whose reference data changes over time).

Replay never fails on odd files either: a recorded file that cannot be read (invalid JSON, corrupt gzip, JSON that
is no POI list, reference data or stored pull) is left out with the reason, the good files still make the pull,
and the pull lists the failures under `failed_files` (only when there are any), which `parse_ocm` quarantines.
"""

from __future__ import annotations

import importlib
import zlib
from pathlib import Path
from typing import Any, Callable, Iterable

from ev_assets.lib.http import MalformedResponseError, RetryPolicy, get_json
from ev_assets.lib import replayfiles
from ev_assets.lib.replayfiles import JSON_RECORDINGS, FileReport, is_shared_root
from ev_assets.lib.settings import Settings, SettingsError
from ev_assets.lib.rawstore import read_json_file

SOURCE = "openchargemap"
API_KEY_HEADER = "X-API-Key"
FAILED_FILES = "failed_files"  # pull key: {replay file: reason} of the recorded files that could not be read

Log = Callable[[str], None] | None


def _claims(rel: str) -> str | None:
    """What Open Charge Map reads of a shared replay root: its sub-folder, and JSON recordings at the top (a format
    chargecloud reads too)."""
    if replayfiles.in_folder(rel, SOURCE):
        return replayfiles.MINE
    return replayfiles.FORMAT if "/" not in rel and rel.lower().endswith(JSON_RECORDINGS) else None


replayfiles.register(SOURCE, _claims)


def fetch_ocm(settings: Settings, log: Log = None, report: FileReport | None = None) -> dict:
    """The raw pull `{"poi": [...], "reference": {...} | None}` in the source's mode.

    This is what gets stored as the immutable raw file; it never contains the API key. In replay mode the files
    that could not be used go to `report` (see `_read_replay`).
    """
    mode = settings.mode(SOURCE)
    if mode == "live":
        return _fetch_live(settings, log)
    if mode == "replay":
        pull, problems = _read_replay(settings.replay_folder(SOURCE), log, shared=is_shared_root(settings, SOURCE))
        if report is not None:
            report.merge(problems)
        return pull
    simulator = importlib.import_module("ev_assets.lib.simulator")  # imported late: only simulated mode needs it
    return {"poi": simulator.ocm_response(settings.simulation), "reference": simulator.ocm_reference(settings.simulation)}


def reference_url(poi_url: str) -> str:
    """`.../v3/poi/` -> `.../v3/referencedata/`: the reference data lives beside the POI endpoint."""
    return poi_url.rstrip("/").rsplit("/", 1)[0] + "/referencedata/"


def _fetch_live(settings: Settings, log: Log) -> dict:
    """GET the POIs and the reference data. The key goes in a header so it never shows up in URLs or logs."""
    if not settings.ocm_api_key:
        raise SettingsError(
            "openchargemap is in live mode but OPENCHARGEMAP_API_KEY is not set: get a free key at "
            "https://openchargemap.org/site/profile and set OPENCHARGEMAP_API_KEY, or use replay/simulated mode"
        )
    policy = RetryPolicy(settings.http_timeout_s, settings.http_retries, settings.http_backoff_s)
    headers = {API_KEY_HEADER: settings.ocm_api_key}
    params = {
        "countrycode": settings.ocm_country,
        "maxresults": settings.ocm_max_results,
        "compact": "true",
        "verbose": "false",
        "opendata": "true",
    }
    poi = get_json(settings.ocm_url, params, policy=policy, headers=headers, log=log)
    if not isinstance(poi, list):
        raise MalformedResponseError(f"GET {settings.ocm_url} returned {type(poi).__name__}, expected a JSON list of POIs")
    ref_url = reference_url(settings.ocm_url)
    reference = get_json(ref_url, policy=policy, headers=headers, log=log)
    if not _is_reference(reference):
        raise MalformedResponseError(f"GET {ref_url} did not return OCM reference data (no Operators/ConnectionTypes)")
    if log:
        log(f"openchargemap: {len(poi)} POIs from {settings.ocm_url} ({settings.ocm_country})")
    return {"poi": poi, "reference": reference}


def _is_reference(content: Any) -> bool:
    return isinstance(content, dict) and ("Operators" in content or "ConnectionTypes" in content)


def _read_replay(folder: Path, log: Log, shared: bool = False) -> tuple[dict, FileReport]:
    """A pull assembled from recorded files in `folder`, and the files that could not be used.

    JSON files (`*.json`, `*.json.gz`) are recognised by content, not name: a JSON list is a POI answer (several
    are merged, a later file's copy of an ID replacing an earlier one), a dict with Operators/ConnectionTypes is
    reference data (the first one is used), and a dict with "poi" is a pull stored by live mode. A JSON file that
    cannot be read or is none of these is unreadable: left out, named in the pull's `failed_files` and the report,
    while the other files still load. Other files are ignored with the reason. In a replay root shared with the
    other sources (`shared`), the files `replayfiles` says are theirs (chargecloud polls, even broken ones, session
    files, OSM extracts) are left alone.
    """
    report = FileReport()
    poi_lists: list[list] = []
    reference, reference_file = None, None
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        name = path.name
        if shared and replayfiles.claimed_by_other(SOURCE, name):  # e.g. a session file, an OSM extract
            continue
        if not name.lower().endswith(JSON_RECORDINGS):
            report.ignored[name] = "not a JSON recording (.json, .json.gz)"
            continue
        try:
            content = read_json_file(path)
        except (OSError, EOFError, ValueError, zlib.error) as exc:
            content, problem = None, f"not valid JSON ({type(exc).__name__}: {exc})"
        else:
            problem = _not_ocm(content)
        if problem is not None:
            # in a shared root, a JSON file of another source (a chargecloud poll, even a broken one) is not ours
            if not (shared and replayfiles.recognised_by_other(SOURCE, name, path)):
                report.unreadable[name] = problem
        elif isinstance(content, list):
            poi_lists.append(content)
        elif _is_reference(content):
            if reference is None:
                reference, reference_file = content, name
            else:
                report.ignored[name] = f"more reference data: the first file, {reference_file}, is used"
        else:  # a pull stored by live mode
            poi_lists.append(content["poi"])
            reference = reference or content.get("reference")
    if not poi_lists:  # e.g. a folder of chargecloud polls replayed with EV_SOURCE=replay: nothing to ingest
        if log:
            log(f"openchargemap replay: no recorded POIs (a JSON list) in {folder}; the pull is empty")
    if reference is None and log:
        log(f"openchargemap replay: no reference data in {folder}; IDs stay undecoded")
    pull = {"poi": _dedupe_by_id(poi_lists), "reference": reference}
    if report.unreadable:  # only then: a pull without failures stays byte for byte what it always was
        pull[FAILED_FILES] = dict(report.unreadable)
    return pull, report


def _not_ocm(content: Any) -> str | None:
    """Why a recorded JSON document is no POI list, reference data or stored pull; None when it is one."""
    if isinstance(content, list):
        if content and not any(isinstance(item, dict) for item in content):
            return "a JSON list without a single POI object in it"
        return None
    if _is_reference(content) or (isinstance(content, dict) and isinstance(content.get("poi"), list)):
        return None
    kind = "object" if isinstance(content, dict) else type(content).__name__
    return (f"a JSON {kind}, not a list of POIs, reference data (Operators, ConnectionTypes, ...) or a stored "
            f'pull ({{"poi": [...]}})')


def _dedupe_by_id(poi_lists: Iterable[list]) -> list:
    """All POIs, one per ID (the last copy wins, kept at the first position); POIs without ID are all kept."""
    by_id: dict[Any, Any] = {}
    no_id: list = []
    for pois in poi_lists:
        for poi in pois:
            key = poi.get("ID") if isinstance(poi, dict) else None
            if key is None:
                no_id.append(poi)
            else:
                by_id[key] = poi
    return [*by_id.values(), *no_id]
