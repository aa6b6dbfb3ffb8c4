"""KPI endpoints over the read-only marts snapshot (`GET /kpi/...`).

The service never opens `warehouse.duckdb` (a warehouse run holds it); it reads the snapshot the warehouse job
publishes (`ev_assets.lib.snapshot`). The SQL lives in `ev_assets.lib.kpis`; this router parses the request,
maps errors to status codes and documents the answers:

- `start_date` / `end_date`: optional ISO dates (`YYYY-MM-DD`, both inclusive). An unparsable date or a start
  after the end is a 400 (not FastAPI's 422: the parameters are read as text and checked here).
- The day rule (`ENERGY_DAY_RULE`): the session-energy routes count the site's own local days (Europe/Oslo for the
  Norwegian reports); utilization and reliability count UTC days. Times in the answers are UTC instants.
- 404 for a user, garage, station, city or operator that is nowhere in the marts; a known one with no data in
  the range gets an empty list (or, for a single figure, `n_days` 0 and nulls).
- Operators are counted once: an operator is its `operator_key` (every spelling of its name in the feed), asked
  for by the key or any spelling, and shown under one display name.
- 503 while there is no snapshot yet (run `make demo` or the warehouse job), or when it lacks a table a KPI reads.

`common` holds what every route shares (errors, dates, the snapshot connection and its data time, the tags, the
`router`), `energy` the session energy routes, `network` the utilization and reliability routes (both register
them on `common.router`).
"""

from ev_assets.api.kpis import energy, network  # noqa: F401 - their routes register on `router`
from ev_assets.api.kpis.common import DATA_AS_OF_RULE, OPENAPI_TAGS, router

__all__ = ["DATA_AS_OF_RULE", "OPENAPI_TAGS", "router"]
