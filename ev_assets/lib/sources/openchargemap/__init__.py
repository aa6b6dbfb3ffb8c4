"""Open Charge Map: fetch the station registry (live, replay or simulated) and flatten it into tables.

The pull is fetched in `fetch.py` (live, replay or simulated) and parsed in `parse.py`; `history.py` keeps every
version of a station over the stored pulls.
"""

from ev_assets.lib.sources.openchargemap.fetch import API_KEY_HEADER, FAILED_FILES, SOURCE, fetch_ocm, reference_url
from ev_assets.lib.sources.openchargemap.history import station_versions
from ev_assets.lib.sources.openchargemap.parse import REFERENCE_LISTS, OcmTables, parse_ocm

__all__ = ["API_KEY_HEADER", "FAILED_FILES", "REFERENCE_LISTS", "SOURCE", "OcmTables", "fetch_ocm", "parse_ocm",
           "reference_url", "station_versions"]
