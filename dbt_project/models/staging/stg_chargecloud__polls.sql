with

source as (
    select * from {{ source('raw', 'chargecloud_poll_log') }}
),

renamed as (
    select
        poll_slot,
        city_slug,
        poll_time as polled_at,
        ok as is_ok,
        {{ clean_text('error') }} as error_message,
        stations as n_stations,
        charging_points as n_charging_points,
        connectors as n_connectors,
        raw_file
    from source
),

deduplicated as (
    -- a re-run of a slot logs it again: the latest log row (by raw file) is the one that was loaded
    select *
    from renamed
    qualify row_number() over (partition by poll_slot, city_slug order by raw_file desc nulls last) = 1
)

select * from deduplicated
