{#- One row per UTC hour over the range of the data (status polls and metered sessions). -#}

with

data_bounds as (
    -- Straight from the raw tables: min/max of one column is cheap there, while the staging views would
    -- deduplicate the whole status history first.
    select min(poll_time) as first_at, max(poll_time) as last_at
    from {{ source('raw', 'status_chargingpoints') }}

    union all

    select min(started_at), max(ended_at)
    from {{ ref('int_energy_sessions_unioned') }}
),

hour_range as (
    select
        {{ ev_assets.hour_start('min(first_at)') }} as first_hour,
        max(last_at) as last_at
    from data_bounds
),

hours as (
    select {{ ev_assets.unnest_series('first_hour', 'last_at', 'interval 1 hour') }} as hour_start
    from hour_range
    where first_hour is not null
)

select
    hour_start,
    hour_start + interval 1 hour as hour_end,
    cast(hour_start as date) as day,
    cast(hour(hour_start) as integer) as hour_of_day,
    cast(date_trunc('week', hour_start) as date) as week_start,
    cast(weekofyear(hour_start) as integer) as iso_week,
    cast({{ ev_assets.iso_year_week('hour_start') }} as integer) as iso_year_week,
    cast(date_trunc('month', hour_start) as date) as month_start,
    cast(month(hour_start) as integer) as month,
    cast(year(hour_start) as integer) as year,
    cast({{ ev_assets.iso_weekday('hour_start') }} as integer) as weekday,
    {{ ev_assets.weekday_name('hour_start') }} as weekday_name,
    {{ ev_assets.iso_weekday('hour_start') }} >= 6 as is_weekend
from hours
