{{
    config(
        materialized='incremental',
        incremental_strategy=ev_assets.incremental_strategy(),
        partition_by=ev_assets.day_partition('session_date'),
        unique_key=['charging_point_id', 'session_start'],
        on_schema_change='fail',
        pre_hook="{{ delete_from_window_start('session_start') }}",
    )
}}

{#-
    Charging sessions inferred from status runs: runs of CHARGING at charging-point level only (connector
    statuses repeat the same session). Energy is bounded from the duration and the point's rated power.
-#}

{%- set window_start = window_start() -%}
{%- set carry_over = is_incremental() and window_start is not none %}

{% call ev_assets.complete_day_partitions(['charging_point_id', 'session_start'], 'session_start', 'session_date') %}
with

charging_runs as (
    select *
    from {{ ref('int_charging_point_status_runs') }}
    where status = 'CHARGING'
),

{% if carry_over %}
carried_over_sessions as (
    -- The session the intervals model re-opened, if any: the latest stored session of the point starting
    -- before the window that was open or ended within the gap limit of the window start (the same rule).
    -- (the condition first, then the latest per point: the same sessions, as only the latest can be open or end
    -- after an earlier one, but no window over the whole history)
    select charging_point_id, session_start
    from {{ this }}
    where session_start < {{ window_start }}
        and (is_open or last_polled_at >= {{ window_start }} - {{ gap_limit() }})
    qualify row_number() over (partition by charging_point_id order by session_start desc) = 1
),
{% endif %}

runs_to_process as (
    {% if carry_over %}
    -- Sessions starting in the window, and after it: a window processed out of order has recomputed the
    -- runs up to the end of the data processed before.
    select charging_runs.*
    from charging_runs
    where charging_runs.interval_start >= {{ window_start }}

    union all

    select charging_runs.*
    from charging_runs
    inner join carried_over_sessions
        on charging_runs.item_id = carried_over_sessions.charging_point_id
        and charging_runs.interval_start = carried_over_sessions.session_start
    {% else %}
    -- the intervals model holds only what was processed so far: take all of it
    select * from charging_runs
    {% endif %}
),

connector_versions as (
    -- type-2 history of the connectors: a version is valid from its first sighting to the next version's
    select
        connector_id,
        charging_point_id,
        power_type,
        rated_power_kw,
        first_seen_at as valid_from,
        lead(first_seen_at) over (partition by connector_id order by first_seen_at) as valid_to,
        row_number() over (partition by connector_id order by first_seen_at) = 1 as is_first_version
    from {{ ref('stg_chargecloud__connectors') }}
),

session_power as (
    -- The rated power of the point at the session start: its most powerful connector in the versions valid
    -- then (the first version for a session seen before any master data).
    select
        runs_to_process.item_id as charging_point_id,
        runs_to_process.interval_start as session_start,
        max(connector_versions.rated_power_kw) as rated_power_kw,
        {{ ev_assets.arg_max('connector_versions.power_type', 'connector_versions.rated_power_kw') }} as power_type
    from runs_to_process
    inner join connector_versions
        on connector_versions.charging_point_id = runs_to_process.item_id
        and (connector_versions.valid_from <= runs_to_process.interval_start or connector_versions.is_first_version)
        and (connector_versions.valid_to is null or runs_to_process.interval_start < connector_versions.valid_to)
    group by 1, 2
),

sessions as (
    select
        runs_to_process.item_id as charging_point_id,
        runs_to_process.station_id,
        runs_to_process.interval_start as session_start,
        runs_to_process.interval_end as session_end,
        runs_to_process.duration_minutes,
        runs_to_process.last_polled_at,
        runs_to_process.n_polls,
        runs_to_process.is_open,
        session_power.rated_power_kw,
        case when session_power.power_type = 'DC' then 'DC' when session_power.power_type is not null then 'AC' end
            as current_type,
        -- what a vehicle takes at most: its on-board charger on AC, the DC limit otherwise
        case when session_power.power_type = 'DC' then {{ var('dc_vehicle_cap_kw') }} else {{ var('ac_vehicle_cap_kw') }} end
            as vehicle_cap_kw
    from runs_to_process
    left join session_power
        on session_power.charging_point_id = runs_to_process.item_id
        and session_power.session_start = runs_to_process.interval_start
)

select
    {{ surrogate_key(['charging_point_id', 'session_start']) }} as session_id,
    charging_point_id,
    station_id,
    session_start,
    session_end,
    -- a session counts in the UTC day it starts, even when it runs past midnight
    cast(session_start as date) as session_date,
    duration_minutes,
    last_polled_at,
    n_polls,
    is_open,
    cast(rated_power_kw as double) as rated_power_kw,
    current_type,
    cast(duration_minutes / 60.0 * least(rated_power_kw, vehicle_cap_kw) as double) as energy_kwh_lower,
    cast(duration_minutes / 60.0 * rated_power_kw as double) as energy_kwh_upper
from sessions
{% endcall %}
