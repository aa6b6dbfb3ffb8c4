{#-
    Runs of OUTOFORDER or INOPERATIVE at both levels (a broken socket can leave its charging point working).
    A view over the status intervals, so it is as current as they are after every window.
-#}
{{ config(materialized='view') }}

with

out_of_order_runs as (
    select *
    from {{ ref('int_status_intervals') }}
    where status in ({{ status_list('out_of_order_statuses') }})
)

select
    {{ surrogate_key(['level', 'item_id', 'interval_start']) }} as interval_id,
    level,
    item_id,
    charging_point_id,
    station_id,
    status,
    interval_start,
    interval_end,
    cast(interval_start as date) as interval_date,
    duration_minutes,
    n_polls,
    is_open,
    -- A failure starts when an item turns out of order. OUTOFORDER followed by INOPERATIVE, or a run split by
    -- a poll gap, continues the same failure.
    coalesce(previous_status not in ({{ status_list('out_of_order_statuses') }}), true) as is_failure_start
from out_of_order_runs
