{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='status_id',
        incremental_predicates=[in_window('polled_at')],
        on_schema_change='fail',
    )
}}

{#- The incremental delete looks only at the window's rows (incremental_predicates), not the whole history. -#}
{#- One row per charging point and poll, processed by day (the window [min_date, max_date)). -#}

with

polls as (
    select *
    from {{ ref('stg_chargecloud__charging_point_statuses') }}
    where {{ in_window('polled_at') }}
),

charging_point_versions as (
    select charging_point_key, charging_point_id, valid_from
    from {{ ref('dim_charging_point') }}
),

station_versions as (
    select station_key, station_id, valid_from
    from {{ ref('dim_station') }}
),

first_charging_point_versions as (
    select * from charging_point_versions
    qualify row_number() over (partition by charging_point_id order by valid_from) = 1
),

first_station_versions as (
    select * from station_versions
    qualify row_number() over (partition by station_id order by valid_from) = 1
),

polls_with_versions as (
    -- The master-data version valid at the poll; the first version for a poll seen before any master data.
    select
        polls.*,
        coalesce(charging_point_versions.charging_point_key, first_charging_point_versions.charging_point_key)
            as charging_point_key,
        coalesce(station_versions.station_key, first_station_versions.station_key) as station_key
    from polls
    asof left join charging_point_versions
        on polls.charging_point_id = charging_point_versions.charging_point_id
        and polls.polled_at >= charging_point_versions.valid_from
    left join first_charging_point_versions
        on polls.charging_point_id = first_charging_point_versions.charging_point_id
    asof left join station_versions
        on polls.station_id = station_versions.station_id
        and polls.polled_at >= station_versions.valid_from
    left join first_station_versions
        on polls.station_id = first_station_versions.station_id
)

select
    {{ surrogate_key(['charging_point_id', 'polled_at']) }} as status_id,
    charging_point_id,
    charging_point_key,
    station_id,
    station_key,
    city_slug,
    polled_at,
    time_bucket(interval 1 hour, polled_at) as hour_start,
    cast(polled_at as date) as poll_date,
    status,
    parking_sensor_status
from polls_with_versions
