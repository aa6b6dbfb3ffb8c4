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
{#- One row per connector and poll, processed by day (the window [min_date, max_date)). -#}

with

polls as (
    select *
    from {{ ref('stg_chargecloud__connector_statuses') }}
    where {{ in_window('polled_at') }}
),

connector_versions as (
    select connector_key, connector_id, valid_from
    from {{ ref('dim_connector') }}
),

first_connector_versions as (
    select * from connector_versions
    qualify row_number() over (partition by connector_id order by valid_from) = 1
),

polls_with_versions as (
    -- the master-data version valid at the poll; the first version for a poll seen before any master data
    select
        polls.*,
        coalesce(connector_versions.connector_key, first_connector_versions.connector_key) as connector_key
    from polls
    asof left join connector_versions
        on polls.connector_id = connector_versions.connector_id
        and polls.polled_at >= connector_versions.valid_from
    left join first_connector_versions
        on polls.connector_id = first_connector_versions.connector_id
)

select
    {{ surrogate_key(['connector_id', 'polled_at']) }} as status_id,
    connector_id,
    connector_key,
    charging_point_id,
    station_id,
    city_slug,
    polled_at,
    time_bucket(interval 1 hour, polled_at) as hour_start,
    cast(polled_at as date) as poll_date,
    status
from polls_with_versions
