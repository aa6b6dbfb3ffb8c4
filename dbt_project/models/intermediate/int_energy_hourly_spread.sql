{#-
    The energy of each metered session spread evenly over the hours it spans (UTC instants; the sites' zones are
    whole hours off UTC, so these are their local clock hours too): an hour gets
    energy_kwh x overlap / duration. Used for hourly figures only (peak hour, active charging hours); daily totals
    count a session in the day it starts (docs block energy_attribution).
-#}

with

sessions as (
    select *
    from {{ ref('int_energy_sessions_unioned') }}
    where started_at is not null
        and ended_at is not null
        and energy_kwh is not null
        and ended_at >= started_at
),

session_hours as (
    select
        sessions.*,
        {{ ev_assets.unnest_series(ev_assets.hour_start('started_at'), 'ended_at', 'interval 1 hour') }} as hour_start
    from sessions
),

hour_overlaps as (
    select
        *,
        {{ ev_assets.seconds_between('greatest(started_at, hour_start)', 'least(ended_at, hour_start + interval 1 hour)') }} as overlap_seconds,
        {{ ev_assets.seconds_between('started_at', 'ended_at') }} as duration_seconds
    from session_hours
)

select
    source_name,
    entity_type,
    entity_id,
    session_id,
    time_zone,
    hour_start,
    cast(
        case
            -- a session without duration puts its energy in the hour it happened
            when duration_seconds = 0 then energy_kwh
            else energy_kwh * overlap_seconds / duration_seconds
        end as double
    ) as energy_kwh
from hour_overlaps
where overlap_seconds > 0
    or duration_seconds = 0
