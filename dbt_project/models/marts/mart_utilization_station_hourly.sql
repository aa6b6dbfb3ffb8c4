{{
    config(
        materialized='incremental',
        incremental_strategy=ev_assets.incremental_strategy(),
        partition_by=ev_assets.day_partition('day'),
        unique_key=['station_id', 'hour_start'],
        on_schema_change='fail',
        pre_hook="{{ delete_from_window_start('hour_start') }}",
    )
}}

{#-
    Utilisation of each station per UTC hour from the charging-point status facts: each poll stands for one poll
    interval of one charging point. Sessions count in the hour they start. Processed from the window start on:
    in order that is the window's days (the facts hold nothing later); a window older than data already processed
    also refreshes the later hours, whose sessions the intervals model recomputed.
-#}

with

polls as (
    select *
    from {{ ref('fct_charging_point_status') }}
    where {{ from_window_start('polled_at') }}
),

hourly_polls as (
    select
        station_id,
        hour_start,
        {{ ev_assets.arg_max('city_slug', 'polled_at') }} as city_slug,
        count(distinct charging_point_id) as n_charging_points,
        count(*) as n_polls,
        count(*) filter (where status = 'CHARGING') as n_polls_charging,
        count(*) filter (where status in ({{ status_list('occupied_statuses') }})) as n_polls_occupied,
        count(*) filter (where status = 'AVAILABLE') as n_polls_available,
        count(*) filter (where status in ({{ status_list('out_of_order_statuses') }})) as n_polls_out_of_order,
        count(*) filter (where status = 'UNKNOWN') as n_polls_unknown
    from polls
    group by station_id, hour_start
),

sessions_started as (
    select
        station_id,
        start_hour as hour_start,
        count(*) as sessions_started
    from {{ ref('fct_charging_sessions') }}
    where {{ from_window_start('session_start') }}
    group by station_id, start_hour
)

select
    hourly_polls.station_id,
    hourly_polls.city_slug,
    hourly_polls.hour_start,
    cast(hourly_polls.hour_start as date) as day,
    cast(hourly_polls.n_charging_points as integer) as n_charging_points,
    cast(hourly_polls.n_polls as integer) as n_polls,
    cast(hourly_polls.n_polls_charging as integer) as n_polls_charging,
    cast(hourly_polls.n_polls_occupied as integer) as n_polls_occupied,
    cast(hourly_polls.n_polls_available as integer) as n_polls_available,
    cast(hourly_polls.n_polls_out_of_order as integer) as n_polls_out_of_order,
    cast(hourly_polls.n_polls_unknown as integer) as n_polls_unknown,
    cast(hourly_polls.n_polls * {{ var('poll_interval_minutes') }} / 60e0 as double) as observed_hours,
    cast(hourly_polls.n_polls_charging / hourly_polls.n_polls as double) as share_charging,
    cast(hourly_polls.n_polls_occupied / hourly_polls.n_polls as double) as share_occupied,
    cast(hourly_polls.n_polls_available / hourly_polls.n_polls as double) as share_available,
    cast(hourly_polls.n_polls_out_of_order / hourly_polls.n_polls as double) as share_out_of_order,
    cast(hourly_polls.n_polls_unknown / hourly_polls.n_polls as double) as share_unknown,
    cast(coalesce(sessions_started.sessions_started, 0) as integer) as sessions_started
from hourly_polls
left join sessions_started
    on hourly_polls.station_id = sessions_started.station_id
    and hourly_polls.hour_start = sessions_started.hour_start
