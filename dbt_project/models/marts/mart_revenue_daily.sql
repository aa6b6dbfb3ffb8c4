{#-
    Revenue per local day (Europe/Berlin, the stations' zone) and station from the charging-event transactions that
    give a cost, per currency.
    A transaction counts in the day it starts, like energy.
-#}

with

transactions as (
    select *
    from {{ ref('int_energy_sessions_unioned') }}
    where source_name = 'events'
        and cost is not null
),

daily as (
    select
        session_date as day,
        entity_id as station_id,
        coalesce(currency, '(unknown)') as currency,
        count(*) as transactions,
        sum(coalesce(energy_kwh, 0)) as energy_kwh,
        sum(cost) as revenue
    from transactions
    group by 1, 2, 3
)

select
    day,
    station_id,
    currency,
    cast(transactions as integer) as transactions,
    cast(energy_kwh as double) as energy_kwh,
    cast(revenue as double) as revenue,
    cast(revenue / nullif(energy_kwh, 0) as double) as revenue_per_kwh
from daily
