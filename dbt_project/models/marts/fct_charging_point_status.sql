{{
    config(
        materialized='incremental',
        incremental_strategy=ev_assets.incremental_strategy(),
        partition_by=ev_assets.day_partition('poll_date'),
        unique_key=['charging_point_id', 'polled_at'],
        incremental_predicates=[in_window('DBT_INCREMENTAL_TARGET.polled_at')],
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
    -- a version is valid in [valid_from, valid_to); the first version also for polls before any master data
    select
        charging_point_key,
        charging_point_id,
        valid_from,
        valid_to,
        row_number() over (partition by charging_point_id order by valid_from) = 1 as is_first_version
    from {{ ref('dim_charging_point') }}
),

station_versions as (
    select
        station_key,
        station_id,
        valid_from,
        valid_to,
        row_number() over (partition by station_id order by valid_from) = 1 as is_first_version
    from {{ ref('dim_station') }}
),

polls_with_versions as (
    -- The master-data version valid at the poll: a hash join on the id with a range condition on the small
    -- dimensions (no sort of the polls, unlike an ASOF join).
    select
        polls.*,
        charging_point_versions.charging_point_key,
        station_versions.station_key
    from polls
    left join charging_point_versions
        on polls.charging_point_id = charging_point_versions.charging_point_id
        and (polls.polled_at >= charging_point_versions.valid_from or charging_point_versions.is_first_version)
        and (polls.polled_at < charging_point_versions.valid_to or charging_point_versions.valid_to is null)
    left join station_versions
        on polls.station_id = station_versions.station_id
        and (polls.polled_at >= station_versions.valid_from or station_versions.is_first_version)
        and (polls.polled_at < station_versions.valid_to or station_versions.valid_to is null)
)

select
    charging_point_id,
    charging_point_key,
    station_id,
    station_key,
    city_slug,
    polled_at,
    {{ ev_assets.hour_start('polled_at') }} as hour_start,
    cast(polled_at as date) as poll_date,
    status,
    parking_sensor_status
from polls_with_versions
