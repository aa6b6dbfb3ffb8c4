{#- Out-of-order periods (OUTOFORDER / INOPERATIVE runs) of charging points and connectors. -#}

with

out_of_order_intervals as (
    select * from {{ ref('int_out_of_order_intervals') }}
),

stations as (
    select station_id, city_slug, operator_name, operator_key
    from {{ ref('dim_station') }}
    where is_current
)

select
    out_of_order_intervals.interval_id,
    out_of_order_intervals.level,
    out_of_order_intervals.item_id,
    out_of_order_intervals.charging_point_id,
    out_of_order_intervals.station_id,
    stations.city_slug,
    stations.operator_name,
    stations.operator_key,
    out_of_order_intervals.status,
    out_of_order_intervals.interval_start,
    out_of_order_intervals.interval_end,
    out_of_order_intervals.interval_date,
    out_of_order_intervals.duration_minutes,
    out_of_order_intervals.n_polls,
    out_of_order_intervals.is_open,
    out_of_order_intervals.is_failure_start
from out_of_order_intervals
left join stations
    on out_of_order_intervals.station_id = stations.station_id
