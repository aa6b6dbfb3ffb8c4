"""What the operator dashboard shows, as plain functions over a marts snapshot connection (no Streamlit here).

Every reader takes a DuckDB connection on the read-only snapshot (`snapshot.Reader(...).connect()`) and returns a
pandas DataFrame or a dict. The KPIs that the service also answers (reliability, session energy) are NOT computed
here: the dashboard calls `ev_assets.lib.kpis`, so its figures and the API's are the same numbers.

Times are UTC in the marts; the hour-of-week heatmap is in local time (`LOCAL_TZ`), the way people think of
"Monday morning". The station page reads marts only (dimensions, hourly utilization, sessions, and the status
facts of a bounded window), never the raw polls, so its cost does not grow with the length of the history.

- `scope`: what the snapshot holds (`coverage`), the period filter, the city / operator filters, the query helpers;
- `network`: the status groups and colours, the network now (from the marts or the live state), its trend, the
  reliability summary;
- `stations`: a station's page (master data, opening hours, equipment, status timeline, sessions, hour of week,
  nearby POIs);
- `energy`: session energy of the sources the KPI service does not cover;
- `models`: champions, gate decisions, drift and live-error reports;
- `formatting`: percentages, times, ages and the "as of" line.
"""
