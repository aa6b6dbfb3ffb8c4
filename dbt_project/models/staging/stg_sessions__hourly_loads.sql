with

source as (
    select * from {{ source('raw', 'hourly_loads') }}
),

renamed as (
    select
        user_id,
        session_id,
        date_from as hour_start_local,
        date_to as hour_end_local,
        -- the dataset is in Norwegian local time, like the session reports
        {{ ev_assets.local_to_utc("'Europe/Oslo'", 'date_from') }} as hour_start_at,
        synthetic_3_6kw as synthetic_3_6kw_kwh,
        synthetic_7_2kw as synthetic_7_2kw_kwh,
        flex_3_6kw as flex_3_6kw_kwh,
        flex_7_2kw as flex_7_2kw_kwh,
        raw_file
    from source
),

deduplicated as (
    -- one row per user, hour and session (NULL session = idle hour)
    select *
    from renamed
    qualify row_number() over (
        partition by user_id, hour_start_local, session_id
        order by raw_file desc nulls last
    ) = 1
)

select * from deduplicated
