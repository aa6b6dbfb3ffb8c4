{#-
    Energy per entity and local day (the site's own time zone, `time_zone`) from the metered session datasets:
    Norwegian reports per user and per garage, ACN sessions per site, charging-event transactions per station. The
    daily total counts each session's whole energy in the local day it starts; peak hour and active charging hours
    come from the even hourly spread, each hour in the local day it falls in (docs block energy_attribution).
    Every day between an entity's first and last day has a row (0 when idle), so the 7-day rolling average is
    over calendar days.
-#}

with

sessions as (
    select * from {{ ref('int_energy_sessions_unioned') }}
    where started_at is not null
),

started_per_day as (
    select
        source_name,
        entity_type,
        entity_id,
        session_date as day,
        count(*) as sessions_started,
        sum(coalesce(energy_kwh, 0)) as energy_kwh
    from sessions
    group by 1, 2, 3, 4
),

spread_per_hour as (
    select
        source_name,
        entity_type,
        entity_id,
        hour_start,
        {{ local_day('hour_start', 'any_value(time_zone)') }} as day,
        sum(energy_kwh) as energy_kwh
    from {{ ref('int_energy_hourly_spread') }}
    group by 1, 2, 3, 4
),

time_zones as (
    select source_name, entity_type, entity_id, any_value(time_zone) as time_zone
    from sessions
    group by 1, 2, 3
),

peak_hours as (
    select
        source_name,
        entity_type,
        entity_id,
        day,
        hour_start as peak_hour_start,
        energy_kwh as peak_hour_kwh
    from spread_per_hour
    where energy_kwh > 0
    qualify row_number() over (
        partition by source_name, entity_type, entity_id, day
        order by round(energy_kwh, 9) desc, hour_start  -- ties to 1e-9 kWh: the earliest hour
    ) = 1
),

active_hours as (
    select
        source_name,
        entity_type,
        entity_id,
        day,
        -- clock hours of the local day in which the entity drew any energy (23 or 25 on a day clocks change)
        count(*) filter (where energy_kwh > 0) as active_charging_hours
    from spread_per_hour
    group by 1, 2, 3, 4
),

entity_ranges as (
    select source_name, entity_type, entity_id, min(day) as first_day, max(day) as last_day
    from (
        select source_name, entity_type, entity_id, day from started_per_day
        union all
        select source_name, entity_type, entity_id, day from active_hours
    )
    group by 1, 2, 3
),

entity_days as (
    select
        source_name,
        entity_type,
        entity_id,
        {{ ev_assets.unnest_days('first_day', 'last_day') }} as day
    from entity_ranges
),

daily as (
    select
        entity_days.source_name,
        entity_days.entity_type,
        entity_days.entity_id,
        entity_days.day,
        coalesce(started_per_day.sessions_started, 0) as sessions_started,
        coalesce(started_per_day.energy_kwh, 0) as energy_kwh,
        peak_hours.peak_hour_start,
        peak_hours.peak_hour_kwh,
        coalesce(active_hours.active_charging_hours, 0) as active_charging_hours
    from entity_days
    left join started_per_day using (source_name, entity_type, entity_id, day)
    left join peak_hours using (source_name, entity_type, entity_id, day)
    left join active_hours using (source_name, entity_type, entity_id, day)
)

select
    daily.source_name,
    daily.entity_type,
    daily.entity_id,
    time_zones.time_zone,
    daily.day,
    cast(sessions_started as integer) as sessions_started,
    cast(energy_kwh as double) as energy_kwh,
    cast(
        sum(energy_kwh) over (
            partition by daily.source_name, daily.entity_type, daily.entity_id
            order by daily.day
            rows between unbounded preceding and current row
        ) as double
    ) as energy_kwh_cumulative,
    cast(
        avg(energy_kwh) over (
            partition by daily.source_name, daily.entity_type, daily.entity_id
            order by daily.day
            rows between 6 preceding and current row
        ) as double
    ) as energy_kwh_rolling_7d_avg,
    peak_hour_start,
    cast(peak_hour_kwh as double) as peak_hour_kwh,
    cast(active_charging_hours as integer) as active_charging_hours
from daily
left join time_zones using (source_name, entity_type, entity_id)
