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

deduplicated as (
    -- one row per (connector, poll time), as for charging points
    select *
    from renamed
    qualify row_number() over (
        partition by connector_id, polled_at
        order by poll_slot, status
    ) = 1
)

select * from deduplicated
