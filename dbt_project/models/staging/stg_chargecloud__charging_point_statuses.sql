with

source as (
    select * from {{ source('raw', 'status_chargingpoints') }}
),

renamed as (
    select
        charging_point_id,
        station_id,
        city_slug,
        {{ clean_text('evse_uid') }} as evse_uid,
        -- the feed leaves status empty when the backend has no state: that is UNKNOWN
        coalesce(upper({{ clean_text('status') }}), 'UNKNOWN') as status,
        upper({{ clean_text('parkingsensor_status') }}) as parking_sensor_status,
        poll_time as polled_at,
        poll_slot
    from source
),

deduplicated as (
    -- A poll lands twice when an answer repeats its timestamp in the next poll slot: keep one row per
    -- (charging point, poll time), the one of the earliest slot.
    select *
    from renamed
    qualify row_number() over (
        partition by charging_point_id, polled_at
        order by poll_slot, status
    ) = 1
)

select * from deduplicated
