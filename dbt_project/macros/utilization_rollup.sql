{#-
    Utilisation of a group of stations per UTC day: the station days of mart_utilization_station_daily added up
    (poll counts and sessions) before dividing, so the shares weigh every charging-point hour equally.
    Used by the city mart (`city_slug`) and the operator mart (`operator_key`, which adds the display name).
-#}
{% macro utilization_rollup(group_column) %}

with

station_days as (
    select * from {{ ref('mart_utilization_station_daily') }}
),

group_days as (
    select
        day,
        {{ group_column }},
        count(*) as n_stations,
        sum(n_charging_points) as n_charging_points,
        sum(n_polls) as n_polls,
        sum(n_polls_charging) as n_polls_charging,
        sum(n_polls_occupied) as n_polls_occupied,
        sum(n_polls_available) as n_polls_available,
        sum(n_polls_out_of_order) as n_polls_out_of_order,
        sum(n_polls_unknown) as n_polls_unknown,
        sum(sessions) as sessions,
        sum(session_minutes) as session_minutes,
        sum(energy_kwh_lower) as energy_kwh_lower,
        sum(energy_kwh_upper) as energy_kwh_upper
    from station_days
    group by day, {{ group_column }}
)

select
    day,
    {{ group_column }},
    cast(n_stations as integer) as n_stations,
    cast(n_charging_points as integer) as n_charging_points,
    cast(n_polls as bigint) as n_polls,
    cast(n_polls * {{ var('poll_interval_minutes') }} / 60e0 as double) as observed_hours,
    cast(n_polls_charging / n_polls as double) as share_charging,
    cast(n_polls_occupied / n_polls as double) as share_occupied,
    cast(n_polls_available / n_polls as double) as share_available,
    cast(n_polls_out_of_order / n_polls as double) as share_out_of_order,
    cast(n_polls_unknown / n_polls as double) as share_unknown,
    cast(sessions as integer) as sessions,
    cast(session_minutes / nullif(sessions, 0) as double) as mean_session_minutes,
    cast(energy_kwh_lower as double) as energy_kwh_lower,
    cast(energy_kwh_upper as double) as energy_kwh_upper
from group_days

{% endmacro %}
