{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['level', 'item_id', 'interval_start'],
        on_schema_change='fail',
        pre_hook="{{ delete_from_window_start('interval_start') }}",
    )
}}

{#-
    Runs of equal status per item (charging point and connector) from consecutive polls. See the docs block
    `processing_window` for how a window re-opens the runs still open at the end of the previous one.
-#}

{%- set window_start = window_start() -%}
{%- set carry_over = is_incremental() and window_start is not none -%}

{%- set carried_over_runs_sql -%}
    -- per item, the latest stored run that starts before the window
    select level, item_id, interval_start as recompute_from
    from {{ this }}
    where interval_start < {{ window_start }}
    qualify
        row_number() over (partition by level, item_id order by interval_start desc) = 1
        -- it may still grow (open), or the window's first polls may extend, cut or cap it
        and (is_open or last_polled_at >= {{ window_start }} - {{ gap_limit() }})
{%- endset -%}

{#-
    Compile-time look-ups on the stored runs (they run before the pre-hook drops the runs from the window start):
    - the earliest poll to re-read, as a constant so the scan of the status history skips older blocks;
    - how far to recompute: a window older than data already processed recomputes up to the end of that data,
      so windows may be run in any order.
-#}
{%- set lookback_start = none -%}
{%- set recompute_until = window_end() -%}
{%- if carry_over and execute -%}
    {%- set lookback = run_query(
        "select strftime(min(recompute_from), '%Y-%m-%d %H:%M:%S.%f+00') from (" ~ carried_over_runs_sql ~ ")"
    ).columns[0].values()[0] -%}
    {%- set lookback_start = none if lookback is none else "timestamptz '" ~ lookback ~ "'" -%}
    {%- if window_end() is not none -%}
        {%- set processed_until = run_query(
            "select strftime(date_trunc('day', max(last_polled_at)) + interval 1 day, '%Y-%m-%d') from " ~ this
        ).columns[0].values()[0] -%}
        {%- if processed_until is not none and processed_until > window_date('max_date') -%}
            {%- set recompute_until = "timestamptz '" ~ processed_until ~ " 00:00:00+00'" -%}
        {%- endif -%}
    {%- endif -%}
{%- endif %}

with

status_polls as (
    select
        'charging_point' as level,
        charging_point_id as item_id,
        charging_point_id,
        station_id,
        status,
        polled_at
    from {{ ref('stg_chargecloud__charging_point_statuses') }}

    union all

    select
        'connector' as level,
        connector_id as item_id,
        charging_point_id,
        station_id,
        status,
        polled_at
    from {{ ref('stg_chargecloud__connector_statuses') }}
),

{% if carry_over %}
carried_over_runs as (
    {{ carried_over_runs_sql }}
),
{% endif %}

polls_to_process as (
    {% if carry_over %}
    select status_polls.*
    from status_polls
    where status_polls.polled_at >= {{ window_start }}
        {% if recompute_until is not none %}
        and status_polls.polled_at < {{ recompute_until }}
        {% endif %}

    {% if lookback_start is not none %}
    union all

    -- the polls of the re-opened runs, from their first poll up to the window
    select status_polls.*
    from status_polls
    inner join carried_over_runs using (level, item_id)
    where status_polls.polled_at >= {{ lookback_start }}
        and status_polls.polled_at < {{ window_start }}
        and status_polls.polled_at >= carried_over_runs.recompute_from
    {% endif %}

    {% else %}
    select *
    from status_polls
    where {{ in_window('polled_at') }}
    {% endif %}
),

polls_with_neighbours as (
    select
        *,
        lag(status) over item_polls as previous_status,
        lag(polled_at) over item_polls as previous_polled_at,
        lead(polled_at) over item_polls as next_polled_at
    from polls_to_process
    window item_polls as (partition by level, item_id order by polled_at)
),

polls_numbered_by_run as (
    select
        *,
        -- a run starts at an item's first poll, at a change of status, or after a gap over the limit
        sum(
            case
                when previous_polled_at is null then 1
                when status <> previous_status then 1
                when polled_at - previous_polled_at > {{ gap_limit() }} then 1
                else 0
            end
        ) over (partition by level, item_id order by polled_at rows unbounded preceding) as run_number
    from polls_with_neighbours
),

runs as (
    select
        level,
        item_id,
        arg_max(charging_point_id, polled_at) as charging_point_id,
        arg_max(station_id, polled_at) as station_id,
        any_value(status) as status,
        min(polled_at) as interval_start,
        max(polled_at) as last_polled_at,
        -- arg_max would skip the NULL of a run without a next poll
        arg_max_null(next_polled_at, polled_at) as next_polled_at,
        count(*) as n_polls
    from polls_numbered_by_run
    group by level, item_id, run_number
),

latest_poll as (
    -- what "processed so far" reaches: runs near it may still grow with the next window's polls
    select max(polled_at) as polled_at from polls_to_process
),

intervals as (
    select
        runs.level,
        runs.item_id,
        runs.charging_point_id,
        runs.station_id,
        runs.status,
        runs.interval_start,
        -- the last poll stands for one poll interval, cut short by the item's next poll when that is sooner
        least(
            runs.last_polled_at + {{ poll_interval() }},
            coalesce(runs.next_polled_at, runs.last_polled_at + {{ poll_interval() }})
        ) as interval_end,
        runs.last_polled_at,
        runs.n_polls,
        runs.next_polled_at is null
            and latest_poll.polled_at - runs.last_polled_at <= {{ gap_limit() }} as is_open
    from runs
    cross join latest_poll
)

select
    level,
    item_id,
    charging_point_id,
    station_id,
    status,
    interval_start,
    interval_end,
    cast(epoch(interval_end - interval_start) / 60.0 as double) as duration_minutes,
    last_polled_at,
    cast(n_polls as integer) as n_polls,
    is_open
from intervals
