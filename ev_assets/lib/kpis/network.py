"""Utilization and reliability KPIs: charging-point time shares from the chargecloud polls, per station from
`marts.mart_utilization_station_daily`, per city / operator added up from the same station days before dividing
(exactly as dbt's `utilization_rollup` builds `mart_utilization_city_daily` / `_operator_daily`), and reliability
per city / operator from `marts.mart_reliability_daily`; per station from the station days and the failures of
`marts.fct_out_of_order_intervals`, by the rules of `mart_reliability_daily`.

An operator is its `operator_key` (`marts.dim_operator`, dbt docs block `operator_key`): every spelling of its
name counts as one operator, shown under its display name. An operator is asked for by its key or by any of its
spellings (`operator_key`).
"""

from __future__ import annotations

from datetime import date

from ev_assets.lib.kpis.common import Row, UnknownEntity, _exists, _in_range, _rows

GROUPS = {"station": "station_id", "city": "city_slug", "operator": "operator_key"}

_OPERATOR_NAMES = """
    SELECT operator_key, 0 AS rank FROM marts.dim_operator WHERE operator_key = $value
    UNION ALL
    SELECT operator_key, 1 AS rank
    FROM (SELECT operator_key, unnest(list_append(spellings, operator_name)) AS spelling FROM marts.dim_operator)
    WHERE lower(trim(spelling)) = lower(trim($value))
"""


def operator_key(con, value: str) -> str:
    """The operator_key of the operator `value` names: the key itself, or any spelling of the operator in
    `marts.dim_operator` (compared without leading / trailing spaces and case, which the rule ignores anyway, so
    at most one operator matches). UnknownEntity when it names none."""
    rows = _rows(con, f"SELECT operator_key FROM ({_OPERATOR_NAMES}) ORDER BY rank, operator_key LIMIT 1",
                 {"value": value})
    if not rows:
        raise UnknownEntity(
            f"unknown operator {value!r}: neither an operator_key nor a spelling of an operator in the marts "
            "(see /kpi/utilization/operators)"
        )
    return rows[0]["operator_key"]


def _require_operators(con) -> None:
    """KpiUnavailable for a snapshot from before the operator dimension (no `marts.dim_operator`)."""
    _rows(con, "SELECT 1 FROM marts.dim_operator LIMIT 0", {})


def check_known(con, kind: str, value: str) -> None:
    """UnknownEntity when the station / city / operator appears nowhere in the marts."""
    if kind == "operator":
        operator_key(con, value)
        return
    column = GROUPS[kind]
    sources = ["marts.dim_station", "marts.mart_utilization_station_daily"]
    if kind != "station":
        sources.append("marts.mart_reliability_daily")
    union = " UNION ALL ".join(f"SELECT 1 FROM {s} WHERE {column} = $value" for s in sources)
    if not _exists(con, union, {"value": value}):
        raise UnknownEntity(f"unknown {kind} {value!r}: not in the marts")


def _days_and_points(kind: str, daily: bool) -> str:
    """Day span of a range row; charging points of a day (a station's over the range: the most in a day)."""
    if daily:
        return "CAST(sum(n_charging_points) AS INTEGER) AS n_charging_points, "
    span = "count(DISTINCT day) AS n_days, min(day) AS first_day, max(day) AS last_day, "
    return span + ("CAST(max(n_charging_points) AS INTEGER) AS n_charging_points, " if kind == "station" else "")


# Station days with the operator's display name (dim_operator) in place of the station's own spelling.
_OPERATOR_STATION_DAYS = """
    (SELECT station_days.* EXCLUDE (operator_name),
            coalesce(operators.operator_name, station_days.operator_key) AS operator_name
     FROM marts.mart_utilization_station_daily AS station_days
     LEFT JOIN marts.dim_operator AS operators USING (operator_key))
"""


def _attributes(kind: str) -> str:
    """What a row shows beside its key: a station its city and operator, an operator its display name."""
    if kind == "station":
        return "arg_max(city_slug, day) AS city_slug, arg_max(operator_name, day) AS operator_name, "
    return "any_value(operator_name) AS operator_name, " if kind == "operator" else ""


def _utilization(con, kind: str, start, end, value: str | None, daily: bool) -> list[Row]:
    key = GROUPS[kind]
    keys = f"{key}, day" if daily else key
    attributes = _attributes(kind)
    stations = "" if kind == "station" else "count(DISTINCT station_id) AS n_stations, "
    source = _OPERATOR_STATION_DAYS if kind == "operator" else "marts.mart_utilization_station_daily"
    return _rows(
        con,
        f"""
        SELECT {keys}, {attributes}{_days_and_points(kind, daily)}{stations}
               sum(observed_hours) AS observed_hours,
               sum(n_polls_charging) / sum(n_polls) AS share_charging,
               sum(n_polls_occupied) / sum(n_polls) AS share_occupied,
               sum(n_polls_available) / sum(n_polls) AS share_available,
               sum(n_polls_out_of_order) / sum(n_polls) AS share_out_of_order,
               sum(n_polls_unknown) / sum(n_polls) AS share_unknown,
               CAST(sum(sessions) AS BIGINT) AS sessions,
               sum(session_minutes) / nullif(sum(sessions), 0) AS mean_session_minutes,
               sum(energy_kwh_lower) AS energy_kwh_lower,
               sum(energy_kwh_upper) AS energy_kwh_upper
        FROM {source}
        WHERE {_in_range('day')} AND (CAST($value AS VARCHAR) IS NULL OR {key} = $value)
        GROUP BY {keys}
        ORDER BY {keys}
        """,
        {"start": start, "end": end, "value": value},
    )


def _group_value(con, kind: str, value: str) -> str:
    """The value to filter the group column by: an operator's key for any of its spellings (UnknownEntity when
    the station / city / operator is not in the marts)."""
    if kind == "operator":
        return operator_key(con, value)
    check_known(con, kind, value)
    return value


def utilization_list(con, kind: str, start: date | None = None, end: date | None = None) -> list[Row]:
    """Per station / city / operator over the range: shares of charging-point time, sessions, energy bounds."""
    if kind == "operator":
        _require_operators(con)
    return _utilization(con, kind, start, end, None, daily=False)


def utilization_daily(con, kind: str, value: str, start: date | None = None, end: date | None = None) -> list[Row]:
    """One station / city / operator per UTC day of the range (UnknownEntity when it is not in the marts); an
    operator by its key or any of its spellings."""
    return _utilization(con, kind, start, end, _group_value(con, kind, value), daily=True)


_STATION_RELIABILITY = """
    WITH station_days AS (
        SELECT day, station_id, city_slug, operator_name, n_charging_points, n_polls, observed_hours,
               n_polls_unknown, n_polls_out_of_order
        FROM marts.mart_utilization_station_daily
    ),
    failures AS (
        SELECT interval_date AS day, station_id, count(*) AS failures
        FROM marts.fct_out_of_order_intervals
        WHERE level = 'charging_point' AND is_failure_start
        GROUP BY 1, 2
    )
    SELECT station_days.day, station_days.station_id, city_slug, operator_name, n_charging_points,
           observed_hours,
           -- hours from poll counts, each poll standing for observed_hours / n_polls
           (n_polls - n_polls_unknown) * observed_hours / n_polls AS known_status_hours,
           n_polls_out_of_order * observed_hours / n_polls AS out_of_order_hours,
           (n_polls - n_polls_unknown - n_polls_out_of_order) * observed_hours / n_polls AS in_service_hours,
           coalesce(failures.failures, 0) AS failures
    FROM station_days
    LEFT JOIN failures ON failures.day = station_days.day AND failures.station_id = station_days.station_id
"""

_RELIABILITY_DAYS = """
    SELECT day, city_slug, operator_name, n_charging_points, observed_hours, known_status_hours,
           out_of_order_hours, in_service_hours, failures
    FROM marts.mart_reliability_daily
"""

# the mart's operator_name is the display name already (one per operator_key)
_OPERATOR_RELIABILITY_DAYS = """
    SELECT day, operator_key, operator_name, n_charging_points, observed_hours, known_status_hours,
           out_of_order_hours, in_service_hours, failures
    FROM marts.mart_reliability_daily
"""
_RELIABILITY_SOURCES = {"station": _STATION_RELIABILITY, "city": _RELIABILITY_DAYS,
                        "operator": _OPERATOR_RELIABILITY_DAYS}


def _reliability(con, kind: str, start, end, value: str | None, daily: bool) -> list[Row]:
    key = GROUPS[kind]
    keys = f"{key}, day" if daily else key
    source = _RELIABILITY_SOURCES[kind]
    attributes = _attributes(kind)
    return _rows(
        con,
        f"""
        SELECT {keys}, {attributes}{_days_and_points(kind, daily)}
               sum(observed_hours) AS observed_hours,
               sum(known_status_hours) AS known_status_hours,
               sum(out_of_order_hours) AS out_of_order_hours,
               sum(in_service_hours) AS in_service_hours,
               -- summed hours can overshoot 100 % by a rounding error
               least(100.0, 100.0 * sum(in_service_hours) / nullif(sum(known_status_hours), 0)) AS availability_pct,
               CAST(sum(failures) AS BIGINT) AS failures,
               sum(in_service_hours) / nullif(sum(failures), 0) AS mtbf_hours
        FROM ({source})
        WHERE {_in_range('day')} AND (CAST($value AS VARCHAR) IS NULL OR {key} = $value)
        GROUP BY {keys}
        ORDER BY {keys}
        """,
        {"start": start, "end": end, "value": value},
    )


def reliability_list(con, kind: str, start: date | None = None, end: date | None = None) -> list[Row]:
    """Per station / city / operator over the range: availability, out-of-order hours, failures, MTBF."""
    if kind == "operator":
        _require_operators(con)
    return _reliability(con, kind, start, end, None, daily=False)


def reliability_daily(con, kind: str, value: str, start: date | None = None, end: date | None = None) -> list[Row]:
    """One station / city / operator per UTC day of the range (UnknownEntity when it is not in the marts); an
    operator by its key or any of its spellings."""
    return _reliability(con, kind, start, end, _group_value(con, kind, value), daily=True)
