"""KPIs over the marts snapshot: one function per KPI, taking a DuckDB connection, returning plain dicts / lists.

Ranges `[start, end]` are inclusive, either end optional (None: open). Callers check a range with `check_range`
first. Session energy counts the site's own local days (the marts' `time_zone`: Europe/Oslo for the Norwegian
reports; dbt docs block `energy_attribution`); utilization and reliability count UTC days. Times are UTC instants.

- `common`: the errors every KPI raises (`UnknownEntity`, `KpiUnavailable`, `InvalidRequest`, `ScopeRequired`),
  `check_range` and the query helpers;
- `energy`: session energy of the Norwegian reports, per user, per garage or over all users;
- `network`: utilization and reliability of the chargecloud stations, per station, city or operator.
"""
