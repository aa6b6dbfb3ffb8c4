{#-
    Utilisation of each station per UTC day: shares of charging-point time from the hourly mart (poll counts, so
    the sums are exact), sessions counted in the day they start with their whole duration and energy bounds.
    A table rebuilt from the hourly mart and the sessions, so sessions extended by a later window are current.
-#}

with

hourly as (
    select * from {{ ref('mart_utilization_station_hourly') }}
),

daily_polls as (
    select
        station_id,
        day,
        {{ ev_assets.arg_max('city_slug', 'hour_start') }} as city_slug,
        max(n_charging_points) as n_charging_points,
        sum(n_polls) as n_polls,
        sum(n_polls_charging) as n_polls_charging,
        sum(n_polls_occupied) as n_polls_occupied,
        sum(n_polls_available) as n_polls_available,
        sum(n_polls_out_of_order) as n_polls_out_of_order,
        sum(n_polls_unknown) as n_polls_unknown
    from hourly
    group by station_id, day
),

daily_sessions as (
    select
        station_id,
        session_date as day,
        count(*) as sessions,
        sum(duration_minutes) as session_minutes,
        sum(energy_kwh_lower) as energy_kwh_lower,
        sum(energy_kwh_upper) as energy_kwh_upper
    from {{ ref('fct_charging_sessions') }}
    group by station_id, session_date
),

stations as (
    select station_id, operator_name, operator_key
    from {{ ref('dim_station') }}
    where is_current
)

select
    daily_polls.day,
    daily_polls.station_id,
    daily_polls.city_slug,
    coalesce(stations.operator_name, '(unknown)') as operator_name,
    coalesce(stations.operator_key, '(unknown)') as operator_key,
    cast(daily_polls.n_charging_points as integer) as n_charging_points,
    cast(daily_polls.n_polls as bigint) as n_polls,
    cast(daily_polls.n_polls_charging as bigint) as n_polls_charging,
    cast(daily_polls.n_polls_occupied as bigint) as n_polls_occupied,
    cast(daily_polls.n_polls_available as bigint) as n_polls_available,
    cast(daily_polls.n_polls_out_of_order as bigint) as n_polls_out_of_order,
    cast(daily_polls.n_polls_unknown as bigint) as n_polls_unknown,
    cast(daily_polls.n_polls * {{ var('poll_interval_minutes') }} / 60e0 as double) as observed_hours,
    cast(daily_polls.n_polls_charging / daily_polls.n_polls as double) as share_charging,
    cast(daily_polls.n_polls_occupied / daily_polls.n_polls as double) as share_occupied,
    cast(daily_polls.n_polls_available / daily_polls.n_polls as double) as share_available,
    cast(daily_polls.n_polls_out_of_order / daily_polls.n_polls as double) as share_out_of_order,
    cast(daily_polls.n_polls_unknown / daily_polls.n_polls as double) as share_unknown,
    cast(coalesce(daily_sessions.sessions, 0) as integer) as sessions,
    cast(coalesce(daily_sessions.session_minutes, 0) as double) as session_minutes,
    cast(daily_sessions.session_minutes / daily_sessions.sessions as double) as mean_session_minutes,
    cast(coalesce(daily_sessions.energy_kwh_lower, 0) as double) as energy_kwh_lower,
    cast(coalesce(daily_sessions.energy_kwh_upper, 0) as double) as energy_kwh_upper
from daily_polls
left join daily_sessions
    on daily_polls.station_id = daily_sessions.station_id
    and daily_polls.day = daily_sessions.day
left join stations
    on daily_polls.station_id = stations.station_id
