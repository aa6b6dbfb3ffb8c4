{#-
    Reliability per UTC day, city and operator (operator_key: every spelling of an operator once), at
    charging-point level: how much of the observed time with a known status the points were in service,
    out-of-order hours, failures (out-of-order episodes starting that day) and the mean time between failures
    (in-service hours per failure).
-#}

with

station_days as (
    select * from {{ ref('mart_utilization_station_daily') }}
),

polls_per_day as (
    select
        day,
        city_slug,
        operator_key,
        count(*) as n_stations,
        sum(n_charging_points) as n_charging_points,
        sum(n_polls) as n_polls,
        sum(n_polls_unknown) as n_polls_unknown,
        sum(n_polls_out_of_order) as n_polls_out_of_order
    from station_days
    group by day, city_slug, operator_key
),

failures_per_day as (
    select
        interval_date as day,
        city_slug,
        coalesce(operator_key, '(unknown)') as operator_key,
        count(*) as failures
    from {{ ref('fct_out_of_order_intervals') }}
    where level = 'charging_point'
        and is_failure_start
    group by 1, 2, 3
),

operators as (
    select operator_key, operator_name from {{ ref('dim_operator') }}
),

counts as (
    select
        polls_per_day.*,
        coalesce(failures_per_day.failures, 0) as failures,
        -- UNKNOWN polls say nothing about the point working: they are left out of the availability
        polls_per_day.n_polls - polls_per_day.n_polls_unknown as n_polls_known,
        polls_per_day.n_polls - polls_per_day.n_polls_unknown - polls_per_day.n_polls_out_of_order
            as n_polls_in_service
    from polls_per_day
    left join failures_per_day
        on polls_per_day.day = failures_per_day.day
        and polls_per_day.city_slug is not distinct from failures_per_day.city_slug
        and polls_per_day.operator_key = failures_per_day.operator_key
)

-- hours from poll counts (each poll stands for one poll interval), so the figures add up exactly
select
    counts.day,
    counts.city_slug,
    counts.operator_key,
    -- a station polled without master data has no operator in dim_operator: '(unknown)'
    coalesce(operators.operator_name, counts.operator_key) as operator_name,
    cast(n_stations as integer) as n_stations,
    cast(n_charging_points as integer) as n_charging_points,
    cast(n_polls * {{ var('poll_interval_minutes') }} / 60e0 as double) as observed_hours,
    cast(n_polls_known * {{ var('poll_interval_minutes') }} / 60e0 as double) as known_status_hours,
    cast(n_polls_out_of_order * {{ var('poll_interval_minutes') }} / 60e0 as double) as out_of_order_hours,
    cast(n_polls_in_service * {{ var('poll_interval_minutes') }} / 60e0 as double) as in_service_hours,
    cast(100e0 * n_polls_in_service / nullif(n_polls_known, 0) as double) as availability_pct,
    cast(failures as integer) as failures,
    cast(n_polls_in_service * {{ var('poll_interval_minutes') }} / 60e0 / nullif(failures, 0) as double) as mtbf_hours
from counts
left join operators using (operator_key)
