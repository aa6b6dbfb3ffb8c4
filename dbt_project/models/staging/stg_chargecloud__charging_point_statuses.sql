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

first_loads as (
    {{ first_load_of_each_answer(source('raw', 'status_chargingpoints')) }}
),

deduplicated as (
    -- one row per (item, poll time): a poll landed twice when an answer repeated its timestamp in the next
    -- poll slot; keep the earliest slot's rows
    select renamed.*
    from renamed
    {{ ev_assets.semi_join() }} first_loads
        on renamed.city_slug = first_loads.city_slug
        and renamed.polled_at = first_loads.poll_time
        and renamed.poll_slot = first_loads.poll_slot
)

select * from deduplicated
