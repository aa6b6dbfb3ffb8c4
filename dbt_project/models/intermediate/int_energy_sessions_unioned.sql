{#-
    Metered charging sessions of the session datasets in one shape, one row per session and entity the marts
    report on: Norwegian reports per user and per garage, ACN sessions per site, charging-event transactions
    per station. Times are UTC; `time_zone` is the site's own zone, in which its days count (the record's zone
    where the dataset gives one, else the source's: Europe/Oslo for the Norwegian reports, America/Los_Angeles for
    ACN, Europe/Berlin for the charging events of the chargecloud stations).
-#}

with

norwegian_reports as (
    select * from {{ ref('stg_sessions__reports') }}
),

acn_sessions as (
    select * from {{ ref('stg_acn__sessions') }}
),

charging_events as (
    select * from {{ ref('stg_events__charging_events') }}
),

event_transactions as (
    -- one transaction per id: from its start event to its complete event (first/last event when missing)
    select
        transaction_id,
        {{ ev_assets.arg_min('station_id', 'event_at') }} as station_id,
        coalesce(min(event_at) filter (where event_type = 'start'), min(event_at)) as started_at,
        coalesce(max(event_at) filter (where event_type = 'complete'), max(event_at)) as ended_at,
        -- the meter counts energy since the start of the transaction
        max(meter_kwh) as energy_kwh,
        max(cost) filter (where event_type = 'complete') as cost,
        {{ ev_assets.arg_max('currency', 'event_at') }} filter (where event_type = 'complete' and cost is not null) as currency
    from charging_events
    group by transaction_id
),

unioned as (
    select
        'norway' as source_name,
        'user' as entity_type,
        user_id as entity_id,
        session_id,
        plugged_in_at as started_at,
        plugged_out_at as ended_at,
        energy_kwh,
        cast(null as double) as cost,
        cast(null as {{ ev_assets.text_type() }}) as currency,
        coalesce(timezone, 'Europe/Oslo') as time_zone
    from norwegian_reports

    union all

    select
        'norway' as source_name,
        'garage' as entity_type,
        garage_id as entity_id,
        session_id,
        plugged_in_at as started_at,
        plugged_out_at as ended_at,
        energy_kwh,
        null as cost,
        null as currency,
        coalesce(timezone, 'Europe/Oslo') as time_zone
    from norwegian_reports

    union all

    select
        'acn' as source_name,
        'site' as entity_type,
        site_id as entity_id,
        session_id,
        connected_at as started_at,
        -- energy flows until charging is done; the car may stay plugged in longer
        coalesce(done_charging_at, disconnected_at) as ended_at,
        energy_kwh,
        null as cost,
        null as currency,
        coalesce(timezone, 'America/Los_Angeles') as time_zone
    from acn_sessions

    union all

    select
        'events' as source_name,
        'station' as entity_type,
        station_id as entity_id,
        transaction_id as session_id,
        started_at,
        ended_at,
        energy_kwh,
        cost,
        currency,
        '{{ var("local_time_zone") }}' as time_zone
    from event_transactions
)

select
    source_name,
    entity_type,
    entity_id,
    session_id,
    started_at,
    ended_at,
    time_zone,
    -- daily totals count a session in the site's local day it starts (see docs block energy_attribution)
    {{ local_day('started_at', 'time_zone') }} as session_date,
    energy_kwh,
    cost,
    currency
from unioned
