{{
    config(
        materialized='incremental',
        incremental_strategy=ev_assets.incremental_strategy(),
        partition_by=ev_assets.day_partition('poll_date'),
        unique_key=['connector_id', 'polled_at'],
        incremental_predicates=[in_window('DBT_INCREMENTAL_TARGET.polled_at')],
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
    -- a version is valid in [valid_from, valid_to); the first version also for polls before any master data
    select
        connector_key,
        connector_id,
        valid_from,
        valid_to,
        row_number() over (partition by connector_id order by valid_from) = 1 as is_first_version
    from {{ ref('dim_connector') }}
),

polls_with_versions as (
    -- the master-data version valid at the poll (a hash join with a range condition, as for charging points)
    select
        polls.*,
        connector_versions.connector_key
    from polls
    left join connector_versions
        on polls.connector_id = connector_versions.connector_id
        and (polls.polled_at >= connector_versions.valid_from or connector_versions.is_first_version)
        and (polls.polled_at < connector_versions.valid_to or connector_versions.valid_to is null)
)

select
    connector_id,
    connector_key,
    charging_point_id,
    station_id,
    city_slug,
    polled_at,
    {{ ev_assets.hour_start('polled_at') }} as hour_start,
    cast(polled_at as date) as poll_date,
    status
from polls_with_versions
