with

source as (
    select * from {{ source('raw', 'status_connectors') }}
),

renamed as (
    select
        connector_id,
        charging_point_id,
        station_id,
        city_slug,
        coalesce(upper({{ clean_text('status') }}), 'UNKNOWN') as status,
        poll_time as polled_at,
        poll_slot
    from source
),

first_loads as (
    {{ first_load_of_each_answer(source('raw', 'status_connectors')) }}
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
