with

source as (
    select * from {{ source('raw', 'acn_sessions') }}
),

renamed as (
    select
        session_id,
        site_id,
        cluster_id,
        station_id as acn_station_id,
        space_id,
        {{ clean_text('user_id') }} as user_id,
        connection_time as connected_at,
        disconnect_time as disconnected_at,
        done_charging_time as done_charging_at,
        kwh_delivered as energy_kwh,
        kwh_requested,
        minutes_available,
        timezone,
        raw_file
    from source
),

deduplicated as (
    select *
    from renamed
    qualify row_number() over (partition by session_id order by raw_file desc nulls last) = 1
)

select * from deduplicated
