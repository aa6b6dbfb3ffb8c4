{#-
    Energy per entity over the whole range of its data: totals and averages over calendar days (idle days count),
    the peak day (daily totals by plug-in day) and the peak hour (from the hourly spread). Days and clock hours
    are the site's local ones (`time_zone`, see mart_energy_daily).
-#}

with

daily as (
    select * from {{ ref('mart_energy_daily') }}
),

totals as (
    select
        source_name,
        entity_type,
        entity_id,
        any_value(time_zone) as time_zone,
        min(day) as first_day,
        max(day) as last_day,
        count(*) as n_days,
        sum(sessions_started) as sessions,
        sum(energy_kwh) as total_energy_kwh,
        avg(energy_kwh) as daily_average_kwh,
        avg(active_charging_hours) as mean_active_charging_hours_per_day
    from daily
    group by 1, 2, 3
),

peak_days as (
    select source_name, entity_type, entity_id, day as peak_day, energy_kwh as peak_day_kwh
    from daily
    -- ties (to 1e-9 kWh: sums of doubles differ in their last bits with the order rows are added in) go to the
    -- earliest, so the daily runs and a one-shot build pick the same
    qualify row_number() over (partition by source_name, entity_type, entity_id order by round(energy_kwh, 9) desc, day) = 1
),

peak_hours as (
    select source_name, entity_type, entity_id, peak_hour_start, peak_hour_kwh
    from daily
    where peak_hour_start is not null
    qualify row_number() over (
        partition by source_name, entity_type, entity_id
        order by round(peak_hour_kwh, 9) desc, peak_hour_start
    ) = 1
),

hour_of_day_profile as (
    -- the local clock hour in which the entity draws the most energy over its whole range
    select
        source_name,
        entity_type,
        entity_id,
        {{ local_hour('hour_start', 'time_zone') }} as hour_of_day,
        sum(energy_kwh) as energy_kwh
    from {{ ref('int_energy_hourly_spread') }}
    group by 1, 2, 3, 4
),

busiest_hours_of_day as (
    select source_name, entity_type, entity_id, hour_of_day as busiest_hour_of_day
    from hour_of_day_profile
    where energy_kwh > 0
    qualify row_number() over (
        partition by source_name, entity_type, entity_id
        order by round(energy_kwh, 9) desc, hour_of_day
    ) = 1
)

select
    totals.source_name,
    totals.entity_type,
    totals.entity_id,
    totals.time_zone,
    totals.first_day,
    totals.last_day,
    cast(totals.n_days as integer) as n_days,
    cast(totals.sessions as integer) as sessions,
    cast(totals.total_energy_kwh as double) as total_energy_kwh,
    cast(totals.daily_average_kwh as double) as daily_average_kwh,
    peak_days.peak_day,
    cast(peak_days.peak_day_kwh as double) as peak_day_kwh,
    peak_hours.peak_hour_start,
    cast(peak_hours.peak_hour_kwh as double) as peak_hour_kwh,
    cast(busiest_hours_of_day.busiest_hour_of_day as integer) as busiest_hour_of_day,
    cast(totals.mean_active_charging_hours_per_day as double) as mean_active_charging_hours_per_day
from totals
left join peak_days using (source_name, entity_type, entity_id)
left join peak_hours using (source_name, entity_type, entity_id)
left join busiest_hours_of_day using (source_name, entity_type, entity_id)
