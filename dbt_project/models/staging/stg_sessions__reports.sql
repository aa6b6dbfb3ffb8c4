with

source as (
    select * from {{ source('raw', 'session_reports') }}
),

renamed as (
    select
        session_id,
        garage_id,
        user_id,
        {{ clean_text('user_type') }} as user_type,
        {{ clean_text('shared_id') }} as shared_id,
        coalesce({{ clean_text('timezone') }}, 'Europe/Oslo') as timezone,
        plugin_at as plugged_in_at_local,
        plugout_at as plugged_out_at_local,
        energy_kwh,
        duration_hours,
        raw_file
    from source
),

in_utc as (
    select
        *,
        -- The report gives local wall time; the warehouse counts days and hours in UTC.
        {{ ev_assets.local_to_utc('timezone', 'plugged_in_at_local') }} as plugged_in_at,
        -- a missing plug-out is plug-in + the reported duration
        coalesce(
            {{ ev_assets.local_to_utc('timezone', 'plugged_out_at_local') }},
            {{ ev_assets.add_microseconds(ev_assets.local_to_utc('timezone', 'plugged_in_at_local'), 'cast(duration_hours * 3600e6 as bigint)') }}
        ) as plugged_out_at
    from renamed
),

deduplicated as (
    -- a file loaded twice repeats its sessions: keep the latest file's row
    select *
    from in_utc
    qualify row_number() over (partition by session_id order by raw_file desc nulls last) = 1
)

select * from deduplicated
