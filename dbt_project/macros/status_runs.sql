{% macro status_runs(polls, id_column) -%}
{#-
    Runs of equal status of one item (a charging point or a connector) from the item's consecutive polls in
    `polls` (a fact table: one row per item and poll). The body of the two incremental models
    int_charging_point_status_runs and int_connector_status_runs; see the docs blocks `status_interval` and
    `processing_window`.

    One sort over all polls of the window, on an integer item number and the poll time. A poll is a run
    boundary where its status differs from the item's previous poll, or a gap over the limit separates them;
    only the boundaries (a few percent of the polls) go on to the second, small window that pairs each run's
    first poll with its last.

    Daily runs carry each item's *state* into the window instead of re-reading history: the item's latest
    stored run before the window enters as one pseudo-poll at its last poll, with its start, poll count and
    the status before it. The window's first run of the item continues it when the rule allows (same status,
    no gap), and the stored run is replaced through the unique key. Only a window older than data already
    processed re-reads polls: those of the runs it re-opens, from their first poll.
-#}
{%- set window_start = window_start() -%}
{%- set carry_over = is_incremental() and window_start is not none -%}

{#- Compile-time look-ups on the stored runs (before the pre-hook drops the runs from the window start). In a
    dbt unit test `this` is a CTE of given rows, which no query can read before the model runs: no look-ups there
    (no runs to re-read, the window's own end). -#}
{%- set reread_from = none -%}
{%- set recompute_until = window_end() -%}
{%- if carry_over and execute and '__dbt__cte__' not in (this | string) -%}
    {%- set earliest = run_query(
        "select " ~ ev_assets.format_utc_timestamp('min(interval_start)') ~ " from " ~ this
        ~ " where interval_start < " ~ window_start ~ " and last_polled_at >= " ~ window_start
    ).columns[0].values()[0] -%}
    {%- set reread_from = none if earliest is none else ev_assets.utc_timestamp_literal(earliest) -%}
    {%- if window_end() is not none -%}
        {%- set processed_until = run_query(
            "select " ~ ev_assets.format_date("date_trunc('day', max(last_polled_at)) + interval 1 day") ~ " from " ~ this
        ).columns[0].values()[0] -%}
        {%- if processed_until is not none and processed_until > window_date('max_date') -%}
            {%- set recompute_until = ev_assets.utc_timestamp_literal(processed_until ~ " 00:00:00") -%}
        {%- endif -%}
    {%- endif -%}
{%- endif %}

with

window_polls as (
    select
        {{ id_column }} as item_id,
        charging_point_id,
        station_id,
        status,
        polled_at
    from {{ polls }}
    {% if carry_over %}
    where polled_at >= {{ window_start }}
        {% if recompute_until is not none %}and polled_at < {{ recompute_until }}{% endif %}
    {% else %}
    where {{ in_window('polled_at') }}
    {% endif %}
),

{% if carry_over %}
item_state as (
    -- per item, its latest stored run before the window
    select stored.*
    from {{ this }} as stored
    inner join (
        select item_id, max(interval_start) as interval_start
        from {{ this }}
        where interval_start < {{ window_start }}
        group by item_id
    ) as latest using (item_id, interval_start)
),
{% endif %}

polls_to_process as (
    select *, cast(null as {{ ev_assets.timestamptz_type() }}) as carried_start, 1 as carried_polls
    from window_polls

    {% if carry_over %}
    union all

    -- the state: one pseudo-poll per item at the last poll of its latest run
    select item_id, charging_point_id, station_id, status, last_polled_at, interval_start, n_polls
    from item_state
    where last_polled_at < {{ window_start }}

    {% if reread_from is not none %}
    union all

    -- a window older than processed data: the polls of the runs it re-opens, from their first poll on
    select polls.{{ id_column }}, polls.charging_point_id, polls.station_id, polls.status, polls.polled_at,
        cast(null as {{ ev_assets.timestamptz_type() }}), 1
    from {{ polls }} as polls
    inner join item_state
        on polls.{{ id_column }} = item_state.item_id
        and item_state.last_polled_at >= {{ window_start }}
    where polls.polled_at >= {{ reread_from }}
        and polls.polled_at >= item_state.interval_start
        and polls.polled_at < {{ window_start }}
    {% endif %}
    {% endif %}
),

polls_with_neighbours as (
    select
        *,
        row_number() over item_polls as poll_number,
        lag(status) over item_polls as previous_status,
        lag(polled_at) over item_polls as previous_polled_at,
        lead(status) over item_polls as next_status,
        lead(polled_at) over item_polls as next_polled_at
    from (
        -- the sort key: a 64-bit hash of the id sorts several times faster than the text (a collision would
        -- merge two items' polls; the test distinct_item_hashes guards against it)
        select *, {{ ev_assets.hash64('item_id') }} as item_number
        from polls_to_process
    )
    window item_polls as (partition by item_number order by polled_at)
),

flagged as (
    -- a run starts at an item's first poll, at a change of status or after a gap over the limit; it ends
    -- where the next one starts or at the item's last poll
    select
        *,
        previous_polled_at is null
            or status <> previous_status
            -- on epoch microseconds: interval arithmetic on timestamptz is several times slower per row
            or {{ ev_assets.epoch_us('polled_at') }} - {{ ev_assets.epoch_us('previous_polled_at') }} > {{ gap_limit_us() }} as is_run_start,
        next_polled_at is null
            or status <> next_status
            or {{ ev_assets.epoch_us('next_polled_at') }} - {{ ev_assets.epoch_us('polled_at') }} > {{ gap_limit_us() }} as is_run_end
    from polls_with_neighbours
),

boundaries as (
    select
        *,
        lead(poll_number) over next_boundary as next_boundary_poll_number,
        lead(polled_at) over next_boundary as next_boundary_polled_at,
        lead(next_polled_at) over next_boundary as next_boundary_next_polled_at,
        lead(charging_point_id) over next_boundary as next_boundary_charging_point_id,
        lead(station_id) over next_boundary as next_boundary_station_id
    from flagged
    where is_run_start or is_run_end
    window next_boundary as (partition by item_number order by polled_at)
),

runs as (
    -- a run start and its end: the start itself, or else the next boundary
    select
        item_id,
        case when is_run_end then charging_point_id else next_boundary_charging_point_id end as charging_point_id,
        case when is_run_end then station_id else next_boundary_station_id end as station_id,
        status,
        coalesce(carried_start, polled_at) as interval_start,
        case when is_run_end then polled_at else next_boundary_polled_at end as last_polled_at,
        case when is_run_end then next_polled_at else next_boundary_next_polled_at end as next_polled_at,
        case when is_run_end then poll_number else next_boundary_poll_number end - poll_number + carried_polls
            as n_polls,
        previous_status
    from boundaries
    where is_run_start
),

latest_poll as (
    -- what "processed so far" reaches: runs near it may still grow with the next window's polls (the latest
    -- poll ends a run, so the runs have it: no second pass over the polls)
    select max(last_polled_at) as polled_at from runs
),

intervals as (
    select
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
            and latest_poll.polled_at - runs.last_polled_at <= {{ gap_limit() }} as is_open,
        {% if carry_over %}
        coalesce(runs.previous_status, item_state.previous_status) as previous_status
        {% else %}
        runs.previous_status
        {% endif %}
    from runs
    cross join latest_poll
    {% if carry_over %}
    left join item_state
        on runs.item_id = item_state.item_id
        and runs.interval_start = item_state.interval_start
    {% endif %}
)

select
    item_id,
    charging_point_id,
    station_id,
    status,
    interval_start,
    interval_end,
    cast({{ ev_assets.seconds_between('interval_start', 'interval_end') }} / 60.0 as double) as duration_minutes,
    last_polled_at,
    cast(n_polls as integer) as n_polls,
    is_open,
    -- the status of the item's run before (across a gap too): where an outage starts
    previous_status
    {{- ev_assets.day_of('interval_start', 'interval_date') }}
from intervals
{%- endmacro %}
