with

source as (
    select * from {{ source('raw', 'charging_events') }}
),

renamed as (
    select
        event_id,
        transaction_id,
        station_id,
        connector_id,
        lower(trim(event_type)) as event_type,
        event_time as event_at,
        meter_kwh,
        power_kw,
        cost,
        upper({{ clean_text('currency') }}) as currency,
        raw_file
    from source
),

deduplicated as (
    select *
    from renamed
    qualify row_number() over (partition by event_id order by raw_file desc nulls last) = 1
)

select * from deduplicated
